import type { KeyRange, RangeOptions } from './key-range.js'
import type { Timestamp } from './timestamp.js'
import type { Batch, Outcome } from './types.js'
import type { Value } from './value.js'

/** One version of a key; `value` undefined is a deletion. */
export interface Version {
  readonly ts: Timestamp
  readonly value: Value | undefined
}

/** A thunk's evaluated outcome and the versions it wrote. */
export interface Settlement {
  readonly ts: Timestamp
  readonly outcome: Outcome
  readonly writes: ReadonlyArray<readonly [key: string, value: Value | undefined]>
}

/**
 * `strict`: durable when the promise resolves (acks depend on it).
 * `relaxed`: may be lost in a crash together with every later relaxed batch,
 * but never torn, and made durable by the next strict batch (settlements can
 * be recomputed from thunks, so they need not wait for the disk).
 */
export type Durability = 'strict' | 'relaxed'

/** Everything in one batch is applied atomically: all of it or none of it. */
export interface StoreBatch {
  /** Replicated batches, write-once by (coordinator, epoch, seq): one record each. */
  readonly batches?: readonly Batch[]
  readonly settle?: readonly Settlement[]
  readonly meta?: ReadonlyArray<readonly [name: string, value: Value]>
  /**
   * Exactly-once records: clientTxnId → the record of the thunk that decided
   * it (write-once). A record starts with that thunk's 36-char timestamp.
   */
  readonly txns?: ReadonlyArray<readonly [clientTxnId: string, record: string]>
  readonly durability?: Durability
}

/** What `batchRange` found: the good batches, and the seqs of damaged records among them. */
export interface BatchRange {
  readonly batches: Batch[]
  readonly damaged: readonly number[]
}

/**
 * Every record a store writes carries a check over what it holds and where
 * it belongs (its key: a batch's coordinator, epoch and seq, a value's key,
 * a record's id), verified on every read: a bit flip, a torn record or a
 * record written in another's place is never answered. Reads of values,
 * exactly-once records, outcomes, meta and snapshots throw
 * StoreCorruptionError naming the record; `batchRange` leaves a damaged
 * batch out and names its seq. A write-once record whose stored copy is
 * damaged is replaced when it is written again.
 *
 * The MVCC store a replica keeps its thunks, versions and bookkeeping in.
 * Implementations: MemoryStore (tests, simulation), IndexedDB, a Node store.
 */
export interface Store {
  /** Applies a batch atomically. */
  write(batch: StoreBatch): Promise<void>
  /**
   * The newest version of `key` with a timestamp strictly below `below`. A
   * store may keep only each key's newest version on disk and older ones in
   * memory for a while: a read that needs a version it no longer holds fails
   * with SnapshotTooOldError, never answers with a wrong version.
   */
  latest(key: string, below: Timestamp): Promise<Version | undefined>
  /** The values of `latest` for many keys at once (undefined: absent or deleted); one store transaction where that matters. */
  latestValues(keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>>
  /** The exactly-once records of these client transaction ids. */
  txnRecords(clientTxnIds: readonly string[]): Promise<Array<string | undefined>>
  /**
   * A coordinator's batches with `from <= seq <= to` in one epoch, ascending,
   * as far as held (`to` may be Infinity), and the seqs in that range whose
   * records failed their check (never returned; writing the batch again
   * replaces the damaged record).
   */
  batchRange(coordinator: string, epoch: number, from: number, to: number): Promise<BatchRange>
  /** A settled thunk's outcome (write-once: the first settlement of a timestamp decides it, versions included). */
  outcome(ts: Timestamp): Promise<Outcome | undefined>
  getMeta(name: string): Promise<Value | undefined>
  /** Every live key with its newest value below `below`, ascending by key (SnapshotTooOldError as for `latest`). */
  entries(below: Timestamp): Promise<Array<[string, Value]>>
  /**
   * The live keys of `range` with their values below `below`, in key order
   * (descending with `reverse`), at most `limit` of them: one ordered scan,
   * the same answer as `latest` of each key in the range (SnapshotTooOldError
   * where that would refuse).
   */
  range(range: KeyRange, below: Timestamp, options?: RangeOptions): Promise<Array<[string, Value]>>
  /**
   * Forgets what no reader at or above `horizon` can need: for each key every
   * version older than its newest version below `horizon` (a deletion that is
   * newest below `horizon` goes too), batches whose every thunk lies below
   * `horizon`, and outcomes below `horizon`.
   * Exactly-once records decided below `records` are dropped as well
   * (retries older than that retention window may apply again), and so are
   * their ids from any set or filter of them the store keeps in memory, so
   * that memory stays bounded by the records held.
   * With `limit`, one call is a bounded step: it looks at no more than
   * `limit` entries of each kind, resuming where the last step stopped, and
   * says `more` when a pass over them is not complete (a store may also do
   * whole passes, as MemoryStore does).
   */
  gc(horizon: Timestamp, options?: { readonly records?: Timestamp, readonly limit?: number }): Promise<GcResult>
  /** The state a new or far-behind replica needs to start at `at` (then fetch thunks from `at` on). */
  exportSnapshot(at: Timestamp): Promise<StoreSnapshot>
  /**
   * The same state read out part by part from a view taken now, for a store
   * that can hold one cheaply (LevelDB snapshots); the store may change
   * meanwhile. Without it, `openSnapshotReader` reads from `exportSnapshot`.
   */
  openSnapshot?(at: Timestamp): Promise<SnapshotReader>
  /**
   * Replaces this store's replicated state with a snapshot's, in one atomic
   * write (a crash leaves the old state or the new one, never a mix): every
   * key's values (versions held in memory too), the exactly-once records
   * (ids the snapshot lacks are gone, from memory as well) and the settled
   * outcomes (none survive) become the snapshot's, and its `meta` entries
   * overwrite those names. Every other meta record (the replica's
   * configuration, epoch decisions, promises, lease) and every batch record
   * stay: those below `at` are left for GC, those above are still to be
   * evaluated. Reads at `below > at` then answer from the snapshot's values;
   * older ones may fail with SnapshotTooOldError.
   */
  importSnapshot(snapshot: StoreSnapshot): Promise<void>
  /**
   * Staged import, for a store that can hold a large snapshot beside its
   * state instead of in memory (IndexedDB pages): `beginStaged` starts a
   * staging at `at` (dropping any earlier one), `stagePart` adds a part
   * (entries in any order, records) and answers its StateDigest lanes,
   * `commitStaged` makes the staged snapshot the state with `meta`, exactly
   * as `importSnapshot` would, and `dropStaged` forgets it. Nothing staged is
   * visible before the commit. Without them, `openSnapshotWriter` collects
   * the parts in memory and imports them at the commit.
   */
  beginStaged?(at: Timestamp): Promise<void>
  stagePart?(items: SnapshotItems): Promise<StagedDigest>
  commitStaged?(meta: ReadonlyArray<readonly [name: string, value: Value]>): Promise<void>
  dropStaged?(): Promise<void>
  close(): Promise<void>
}

export interface GcResult {
  readonly versionsRemoved: number
  readonly batchesRemoved: number
  readonly outcomesRemoved: number
  readonly recordsRemoved: number
  /** A bounded step stopped before the end of some kind: call again (with the same or a later horizon) to go on. */
  readonly more?: boolean
}

/** A replica's state as of `at`: values below it, exactly-once records, and metadata. */
export interface StoreSnapshot {
  readonly at: Timestamp
  readonly entries: ReadonlyArray<readonly [key: string, value: Value]>
  readonly txns: ReadonlyArray<readonly [clientTxnId: string, record: string]>
  readonly meta: ReadonlyArray<readonly [name: string, value: Value]>
}

/** Items of a snapshot: entries, and exactly-once records. */
export interface SnapshotItems {
  readonly entries: ReadonlyArray<readonly [key: string, value: Value]>
  readonly txns: ReadonlyArray<readonly [clientTxnId: string, record: string]>
}

/** The StateDigest lanes of a staged part's entries and of its records. */
export interface StagedDigest {
  readonly values: readonly [number, number]
  readonly records: readonly [number, number]
}

/** Part of a snapshot as it is read out: entries (in key order), then exactly-once records. */
export interface SnapshotPart extends SnapshotItems {
  /** The last part: the snapshot ends with it. */
  readonly done: boolean
}

/**
 * A store's state below `at`, read out part by part from one consistent view
 * of it (writes after the reader opened are not seen), so a voter streams a
 * snapshot with a few parts in memory instead of a copy of its state.
 */
export interface SnapshotReader {
  readonly at: Timestamp
  /** The next part, about `maxBytes` (`itemBytes`) of items and at least one while any are left; `done` with the last (which may be empty). */
  read(maxBytes: number): Promise<SnapshotPart>
  /** Releases the view (a LevelDB snapshot). Safe to call during a read, and twice. */
  close(): Promise<void>
}

/** Every method of the `Store` contract but `close` and the optional `openSnapshot` (a reader does not cross a worker boundary), in one list (the optional staging ones included: a forwarding host forwards them to a store that has them): hosts that forward a store (the database worker) derive their API from it. */
export const STORE_METHODS = [
  'write', 'latest', 'latestValues', 'txnRecords', 'batchRange', 'outcome', 'getMeta', 'entries', 'range', 'gc', 'exportSnapshot', 'importSnapshot',
  'beginStaged', 'stagePart', 'commitStaged', 'dropStaged'
] as const satisfies ReadonlyArray<keyof Store>

export type StoreMethod = (typeof STORE_METHODS)[number]

/** Fails to compile when the `Store` contract gains a method STORE_METHODS does not list. */
export type StoreMethodsComplete = Exclude<keyof Store, StoreMethod | 'close' | 'openSnapshot'> extends never ? true : never
export const STORE_METHODS_COMPLETE: StoreMethodsComplete = true
