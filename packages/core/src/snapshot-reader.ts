import { StateDigest } from './state-digest.js'
import type { SnapshotItems, SnapshotPart, SnapshotReader, StagedDigest, Store, StoreSnapshot } from './store.js'
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

/** Where a fetched snapshot's parts go as they arrive, until it is committed as the state or dropped. */
export interface SnapshotWriter {
  write(items: SnapshotItems): Promise<StagedDigest>
  /** Makes the snapshot the store's state, with `meta` (as `importSnapshot`). */
  commit(meta: ReadonlyArray<readonly [string, Value]>): Promise<void>
  abort(): Promise<void>
}

/** The digest lanes of some items. */
export function stagedDigest (items: SnapshotItems): StagedDigest {
  return { values: StateDigest.lanesOf(items.entries), records: StateDigest.lanesOf([], items.txns) }
}

/** A writer that collects the parts in memory and imports them whole (`snapshot`: what it collected, for a synchronous import). */
export class CollectingWriter implements SnapshotWriter {
  private readonly entries: Array<readonly [string, Value]> = []
  private readonly txns: Array<readonly [string, string]> = []

  constructor (private readonly at: Timestamp, private readonly store?: Store) {}

  add (items: SnapshotItems): StagedDigest {
    this.entries.push(...items.entries)
    this.txns.push(...items.txns)
    return stagedDigest(items)
  }

  snapshot (meta: ReadonlyArray<readonly [string, Value]>): StoreSnapshot {
    return { at: this.at, entries: this.entries, txns: this.txns, meta }
  }

  async write (items: SnapshotItems): Promise<StagedDigest> {
    return this.add(items)
  }

  async commit (meta: ReadonlyArray<readonly [string, Value]>): Promise<void> {
    if (this.store === undefined) throw new Error('a collecting writer without a store cannot commit')
    await this.store.importSnapshot(this.snapshot(meta))
  }

  async abort (): Promise<void> {}
}

/** A store's `importSnapshot` through its own staging: begin, one part, commit (the staging dropped if the part fails). */
export async function importByStaging (store: Required<Pick<Store, 'beginStaged' | 'stagePart' | 'commitStaged' | 'dropStaged'>>, snapshot: StoreSnapshot): Promise<void> {
  await store.beginStaged(snapshot.at)
  try {
    await store.stagePart(snapshot)
  } catch (err) {
    await store.dropStaged()
    throw err
  }
  await store.commitStaged(snapshot.meta)
}

/** The store's staging when it has one (the parts go to disk as they come), else a collecting writer. */
export async function openSnapshotWriter (store: Store, at: Timestamp): Promise<SnapshotWriter> {
  if (store.beginStaged === undefined || store.stagePart === undefined || store.commitStaged === undefined || store.dropStaged === undefined) return new CollectingWriter(at, store)
  const staging = store as Store & Required<Pick<Store, 'beginStaged' | 'stagePart' | 'commitStaged' | 'dropStaged'>>
  await staging.beginStaged(at)
  return {
    write: async items => await staging.stagePart(items),
    commit: async meta => { await staging.commitStaged(meta) },
    abort: async () => { await staging.dropStaged() }
  }
}
