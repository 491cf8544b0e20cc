import type { Version } from './store.js'
import type { Timestamp } from './timestamp.js'

/**
 * A Map from string keys that also answers its keys in string order,
 * sorting them again only after a key was added or removed (MemoryStore's
 * range reads and GC steps).
 */
export class SortedKeyMap<V> extends Map<string, V> {
  private sorted: string[] | undefined

  override set (key: string, value: V): this {
    if (this.sorted !== undefined && !this.has(key)) this.sorted = undefined
    return super.set(key, value)
  }

  override delete (key: string): boolean {
    const had = super.delete(key)
    if (had) this.sorted = undefined
    return had
  }

  override clear (): void {
    this.sorted = undefined
    super.clear()
  }

  /** Every key, ascending (the same array until the keys change: do not modify it). */
  sortedKeys (): readonly string[] {
    this.sorted ??= [...this.keys()].sort()
    return this.sorted
  }
}

/** Keys after `from` in order, at most `limit`; `next` is where the following step starts (undefined: the pass is over). */
export function keysAfter (keys: Iterable<string>, from: string | undefined, limit: number): { take: string[], next: string | undefined } {
  const sorted = [...keys].filter(k => from === undefined || k > from).sort()
  if (sorted.length <= limit) return { take: sorted, next: undefined }
  const take = sorted.slice(0, limit)
  return { take, next: take[take.length - 1] }
}

/** Binary search: index of the last entry with ts < below, or -1. */
export function lastBelow (versions: readonly Version[], below: Timestamp): number {
  let lo = 0
  let hi = versions.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((versions[mid] as Version).ts < below) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}
