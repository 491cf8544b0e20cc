import { inRange, type RangeRead, type Timestamp, type Value } from '@tideline/core'

/**
 * Optimistic calls: what this tab's calls in flight are expected to write,
 * computed by running each procedure on the local replica as soon as it is
 * called. Subscriptions show these writes on top of the replica, flagged as
 * pending, until the call's final result arrives: an abort or a failure
 * drops them at once; a commit drops them once the replica has evaluated
 * past the call's timestamp (its real writes are then in the replica), so
 * nothing flickers back in between.
 */

interface Pending {
  readonly writes: ReadonlyArray<readonly [string, Value | undefined]>
  /** The final commit's timestamp: dropped once the frontier passes it. */
  committedAt?: Timestamp
}

export class Speculations {
  /** In call order: a later call's write to a key wins over an earlier one's. */
  private readonly calls = new Map<number, Pending>()
  private next = 0

  get size (): number {
    return this.calls.size
  }

  /** How many writes the pending calls expect, in all. */
  get writes (): number {
    let n = 0
    for (const p of this.calls.values()) n += p.writes.length
    return n
  }

  /** Registers a call's expected writes; returns its id. */
  add (writes: ReadonlyArray<readonly [string, Value | undefined]>): number {
    const id = ++this.next
    this.calls.set(id, { writes })
    return id
  }

  /** The keys a call expects to write. */
  keysOf (id: number): string[] {
    return (this.calls.get(id)?.writes ?? []).map(([k]) => k)
  }

  /** The call's final result arrived: committed at `ts` (kept until the frontier passes it), or not (dropped now). Answers whether it was dropped. */
  settle (id: number, committedAt: Timestamp | undefined): boolean {
    const p = this.calls.get(id)
    if (p === undefined) return false
    if (committedAt === undefined) {
      this.calls.delete(id)
      return true
    }
    p.committedAt = committedAt
    return false
  }

  /** Drops the committed calls the replica has evaluated (their timestamps below `frontier`); answers the keys they wrote. */
  passed (frontier: Timestamp): string[] {
    const keys: string[] = []
    for (const [id, p] of this.calls) {
      if (p.committedAt === undefined || p.committedAt >= frontier) continue
      this.calls.delete(id)
      for (const [k] of p.writes) keys.push(k)
    }
    return keys
  }

  /** Whether some pending write may change what `matches` accepts. */
  touches (matches: (key: string) => boolean): boolean {
    for (const p of this.calls.values()) if (p.writes.some(([k]) => matches(k))) return true
    return false
  }

  /** The value each pending key would have, in call order (undefined: deleted). */
  private overlay (): Map<string, Value | undefined> {
    const out = new Map<string, Value | undefined>()
    for (const p of this.calls.values()) for (const [k, v] of p.writes) out.set(k, v)
    return out
  }

  /** Values as read, with the pending writes to `keys` put over them (a deletion removes one). */
  values (keys: Iterable<string>, read: Readonly<Record<string, Value>>): Map<string, Value | undefined> {
    const overlay = this.overlay()
    const out = new Map<string, Value | undefined>()
    for (const k of keys) out.set(k, overlay.has(k) ? overlay.get(k) : read[k])
    return out
  }

  /**
   * A read's result with the pending writes put over it: for a key list, in
   * the list's order; for a range, its keys re-sorted and the limit applied
   * again. `pending` names the keys whose shown value (or absence) is one a
   * call in flight expects, not yet the replica's.
   */
  apply (target: readonly string[] | RangeRead, entries: ReadonlyArray<readonly [string, Value]>): { entries: Array<readonly [string, Value]>, values: Record<string, Value>, pending: string[] } {
    const overlay = this.overlay()
    const merged = new Map<string, Value | undefined>(entries)
    const pending: string[] = []
    const inTarget = Array.isArray(target) ? ((set: Set<string>) => (k: string) => set.has(k))(new Set(target as readonly string[])) : (k: string) => inRange(k, (target as RangeRead).range)
    for (const [k, v] of overlay) {
      if (!inTarget(k)) continue
      merged.set(k, v)
      pending.push(k)
    }
    let keys: string[]
    if (Array.isArray(target)) {
      keys = [...new Set(target as readonly string[])]
    } else {
      keys = [...merged.keys()].sort()
      if ((target as RangeRead).reverse === true) keys.reverse()
    }
    const out: Array<readonly [string, Value]> = []
    const limit = Array.isArray(target) ? Infinity : (target as RangeRead).limit ?? Infinity
    for (const k of keys) {
      if (out.length >= limit) break
      const v = merged.get(k)
      if (v !== undefined) out.push([k, v])
    }
    return { entries: out, values: Object.fromEntries(out), pending }
  }
}
