import type { SnapshotPart, SnapshotReader, Store, StoreSnapshot } from './store.js'
import type { Timestamp } from './timestamp.js'
import { checkValue, type Value } from './value.js'

/** What one item of a snapshot counts for in a part (keys at 3 bytes a char: UTF-8 at worst). */
export function itemBytes (item: readonly [string, Value] | readonly [string, string], record: boolean): number {
  return 3 * item[0].length + (record ? 3 * (item[1] as string).length : checkValue(item[1], Infinity))
}

/** A reader over a snapshot already in memory (MemoryStore, IdbStore, the simulator); `take` is its synchronous read. */
export class ArrayReader implements SnapshotReader {
  private offset = 0
  private ended = false

  constructor (private readonly snapshot: StoreSnapshot) {}

  get at (): Timestamp {
    return this.snapshot.at
  }

  take (maxBytes: number): SnapshotPart {
    if (this.ended) throw new Error('the snapshot was read to its end')
    const { entries, txns } = this.snapshot
    const total = entries.length + txns.length
    const start = this.offset
    let bytes = 0
    while (this.offset < total && (this.offset === start || bytes < maxBytes)) {
      const i = this.offset++
      bytes += i < entries.length ? itemBytes(entries[i] as readonly [string, Value], false) : itemBytes(txns[i - entries.length] as readonly [string, string], true)
    }
    const end = this.offset
    this.ended = end === total
    return {
      entries: entries.slice(Math.min(start, entries.length), Math.min(end, entries.length)),
      txns: txns.slice(Math.max(0, start - entries.length), Math.max(0, end - entries.length)),
      done: this.ended
    }
  }

  async read (maxBytes: number): Promise<SnapshotPart> {
    return this.take(maxBytes)
  }

  async close (): Promise<void> {}
}

/** The store's own streaming reader when it has one, else one over its whole export. */
export async function openSnapshotReader (store: Store, at: Timestamp): Promise<SnapshotReader> {
  if (store.openSnapshot !== undefined) return await store.openSnapshot(at)
  return new ArrayReader(await store.exportSnapshot(at))
}
