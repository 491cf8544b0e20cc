import type { ClassicLevel } from 'classic-level'
import { itemBytes } from '@tideline/core'
import type { SnapshotPart, SnapshotReader, Timestamp, Value } from '@tideline/core'
import { decode } from './codec.js'
import { unseal } from './checked.js'
import { nameOfNameKey, tagRange, type Generation } from './keys.js'

type Db = ClassicLevel<Buffer, Buffer>
type Snapshot = ReturnType<Db['snapshot']>
type Iterator = ReturnType<Db['iterator']>

/** Entries an iterator step fetches at once. */
const STEP = 64

/**
 * A LevelStore's state below `at` read out part by part from a LevelDB
 * snapshot: the newest version of every key (in key order), then the
 * exactly-once records of thunks below `at`. It owns the snapshot and the
 * iterators on it; reads are serialised, and `close` waits for one under way.
 */
export class LevelSnapshotReader implements SnapshotReader {
  private values: Iterator
  private records: Iterator | undefined
  /** Items fetched from an iterator and not yet handed out. */
  private pending: Array<[Buffer, Buffer]> = []
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false
  private ended = false

  /** `valueOf`: a key's value below `at` from its newest stored entry (undefined: deleted, or none). */
  constructor (private readonly db: Db, private readonly snapshot: Snapshot, readonly at: Timestamp, private readonly gen: Generation, private readonly valueOf: (key: string, entry: Buffer) => Value | undefined) {
    this.values = db.iterator({ ...tagRange(gen.latest), snapshot })
  }

  async read (maxBytes: number): Promise<SnapshotPart> {
    const next = this.queue.then(async () => await this.take(maxBytes))
    this.queue = next.catch(() => {})
    return await next
  }

  private async take (maxBytes: number): Promise<SnapshotPart> {
    if (this.closed) throw new Error('the snapshot reader is closed')
    if (this.ended) throw new Error('the snapshot was read to its end')
    const entries: Array<[string, Value]> = []
    const txns: Array<[string, string]> = []
    let bytes = 0
    while (bytes < maxBytes || entries.length + txns.length === 0) {
      const item = await this.nextItem()
      if (item === undefined) {
        this.ended = true
        break
      }
      if (this.records === undefined) {
        const key = nameOfNameKey(item[0])
        const value = this.valueOf(key, unseal(item[0], item[1]))
        if (value === undefined) continue
        entries.push([key, value])
        bytes += itemBytes([key, value], false)
      } else {
        const record = decode<string>(unseal(item[0], item[1]))
        if (record.slice(0, 36) >= this.at) continue
        const id = nameOfNameKey(item[0])
        txns.push([id, record])
        bytes += itemBytes([id, record], true)
      }
    }
    return { entries, txns, done: this.ended }
  }

  /** The next stored item: values, then (once they end) records; undefined at the end. */
  private async nextItem (): Promise<[Buffer, Buffer] | undefined> {
    for (;;) {
      const item = this.pending.pop()
      if (item !== undefined) return item
      const iterator = this.records ?? this.values
      const got = await iterator.nextv(STEP) as Array<[Buffer, Buffer]>
      if (got.length > 0) {
        this.pending = got.reverse()
        continue
      }
      if (this.records !== undefined) return undefined
      await this.values.close()
      this.records = this.db.iterator({ ...tagRange(this.gen.txn), snapshot: this.snapshot })
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.queue
    await this.values.close()
    await this.records?.close()
    await this.snapshot.close()
  }
}
