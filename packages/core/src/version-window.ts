import { SnapshotTooOldError } from './errors.js'
import { TS_ZERO, makeTimestamp, timestampMs, type Timestamp } from './timestamp.js'

/** One version as a store keeps it in memory (`V` is whatever form the store reads it back from). */
export interface HeldVersion<V> {
  readonly ts: Timestamp
  readonly value: V
}

/**
 * The versions that reads below a key's newest value need, kept in memory
 * for a window (DESIGN §11–12): a store keeps only each key's newest value
 * on disk, and when a settlement replaces it, the replaced version stays
 * here until the window has passed it.
 *
 * `retainedFrom` is the line it answers for: every version replaced by a
 * write at or above it is held. A read at `below` whose key's newest value
 * is at or above `below` needs the version that was current at `below`,
 * which a write at or above `below` replaced: held when `below >=
 * retainedFrom`, and otherwise refused with SnapshotTooOldError rather than
 * answered wrongly. A store opens with `retainedFrom` just above everything
 * it settled before (those replacements are gone), trimming raises it, and GC
 * raises it to its horizon.
 */
export class VersionWindow<V> {
  private readonly byKey = new Map<string, Array<HeldVersion<V>>>()
  /** [replaced at, key, version ts] in about the order of replacement, for trimming. */
  private readonly queue: Array<readonly [Timestamp, string, Timestamp]> = []
  private head = 0
  private from: Timestamp

  constructor (private readonly windowMs: number, retainedFrom: Timestamp = TS_ZERO) {
    this.from = retainedFrom
  }

  get retainedFrom (): Timestamp {
    return this.from
  }

  /** Versions held (for tests and stats). */
  get size (): number {
    return this.queue.length - this.head
  }

  /** `version` of `key` was the newest until a write at `by` replaced it (or, for a late write, came after it). */
  replaced (key: string, version: HeldVersion<V>, by: Timestamp): void {
    let list = this.byKey.get(key)
    if (list === undefined) { list = []; this.byKey.set(key, list) }
    const last = list[list.length - 1]
    if (last === undefined || last.ts < version.ts) {
      list.push(version)
    } else {
      let i = list.length
      while (i > 0 && (list[i - 1] as HeldVersion<V>).ts > version.ts) i--
      if (list[i - 1]?.ts === version.ts) return
      list.splice(i, 0, version)
    }
    this.queue.push([by, key, version.ts])
  }

  /**
   * The version a read at `below` sees, given the key's newest one on disk:
   * that one when it lies below `below`, else the newest held version below
   * `below` (undefined when the key had none). Throws SnapshotTooOldError
   * when the answer may be a version no longer held.
   */
  read (key: string, newest: HeldVersion<V> | undefined, below: Timestamp): HeldVersion<V> | undefined {
    if (newest === undefined || newest.ts < below) return newest
    if (below < this.from) {
      throw new SnapshotTooOldError(`a read of ${JSON.stringify(key)} below ${below} needs a version older than this replica still holds (it holds versions replaced at or above ${this.from}); read at a newer timestamp`)
    }
    const list = this.byKey.get(key)
    if (list === undefined) return undefined
    for (let i = list.length - 1; i >= 0; i--) if ((list[i] as HeldVersion<V>).ts < below) return list[i]
    return undefined
  }

  /**
   * `read` at `below` as the window stands now, for a view of a store taken
   * now (a snapshot read out while the store goes on): later writes, trims
   * and resets do not change its answers. O(keys held).
   */
  viewBelow (below: Timestamp): (key: string, newest: HeldVersion<V> | undefined) => HeldVersion<V> | undefined {
    const from = this.from
    const seen = new Map<string, HeldVersion<V> | undefined>()
    for (const key of this.byKey.keys()) seen.set(key, this.read(key, { ts: below, value: undefined as V }, below))
    return (key, newest) => {
      if (newest === undefined || newest.ts < below) return newest
      if (below < from) throw new SnapshotTooOldError(`a read of ${JSON.stringify(key)} below ${below} needs a version older than this replica held when the view was taken (it held versions replaced at or above ${from})`)
      return seen.get(key)
    }
  }

  /** Drops versions replaced more than the window before `newest` (the newest write's timestamp). */
  trim (newest: Timestamp): void {
    const ms = timestampMs(newest) - this.windowMs
    if (ms <= 0) return
    this.forget(makeTimestamp(ms, '0'.repeat(16), 0))
  }

  /** Drops every version replaced below `cut`; reads below it are refused from now on. */
  forget (cut: Timestamp): number {
    if (cut <= this.from) return 0
    this.from = cut
    let dropped = 0
    while (this.head < this.queue.length) {
      const [by, key, ts] = this.queue[this.head] as readonly [Timestamp, string, Timestamp]
      if (by >= cut) break
      this.head++
      const list = this.byKey.get(key)
      if (list === undefined) continue
      const i = list.findIndex(v => v.ts === ts)
      if (i >= 0) { list.splice(i, 1); dropped++ }
      if (list.length === 0) this.byKey.delete(key)
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    return dropped
  }

  /** Forgets everything; reads below `retainedFrom` are refused. */
  reset (retainedFrom: Timestamp): void {
    this.byKey.clear()
    this.queue.length = 0
    this.head = 0
    this.from = retainedFrom
  }
}
