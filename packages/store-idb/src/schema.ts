import type { DBSchema, IDBPTransaction, StoreNames } from 'idb'
import type { Batch, HeldVersion, Outcome, Timestamp, Value } from '@tideline/core'

/*
 * Layout: one IndexedDB database per replica, six object stores.
 *
 *   latest   key                       → { ts, value, check }: the key's newest version (value undefined: a deletion)
 *   batches  [coordinator, epoch, seq] → { last, batch, check }; index byLast (last = its last thunk's ts)
 *   runs     ts of its last thunk      → { first, outcomes: [ts, outcome][], check }: one settlement batch's outcomes
 *   txns     clientTxnId               → { record, check }: an exactly-once record
 *   meta     name                      → { value, check }
 *   base     page number               → { ts, keys, values, check }: a snapshot's values, PAGE_KEYS at a time (see BaseLayer);
 *            -1 → { firsts, start, check }: each page's first key, and the number of the first page;
 *            pages of a snapshot being staged in the other range, and its records ({ records, check })
 *
 * Every record carries `check`: recordCheck over its object store and key
 * (`where`, see checks.ts) and the rest of it, verified on every read, so a
 * flipped bit, a torn record or one written at another record's key is never
 * answered.
 *
 * Array keys compare element by element, numbers numerically and strings by
 * UTF-16 code unit, as JS strings do: a range of one coordinator's batches is
 * one getAll over [c, e, from] … [c, e, to], and timestamps sort as their text.
 *
 * Only each key's newest version is on disk; the versions it replaced stay in
 * memory for a window (VersionWindow, see IdbStore).
 */

/** A key's newest version (a `latest` record without its check, or a page's entry). */
export type LatestRecord = HeldVersion<Value | undefined>

/** What every record holds besides its content: see checks.ts. */
export interface Checked {
  readonly check: number
}

/** A `latest` record. */
export interface LatestRow extends LatestRecord, Checked {}

export type BatchKey = [coordinator: string, epoch: number, seq: number]

/** A page of a snapshot's values: ascending keys, each with its value, all as of `ts`. */
export interface BasePage extends Checked {
  readonly ts: Timestamp
  readonly keys: readonly string[]
  readonly values: readonly Value[]
}

/** The `base` record that says which pages are current. */
export interface BaseIndex extends Checked {
  readonly firsts: readonly string[]
  /** The key of the first page (0 for stores written before staging). */
  readonly start?: number
}

/** A staged part's exactly-once records. */
export interface RecordPage extends Checked {
  readonly records: ReadonlyArray<readonly [string, string]>
}

/** A batch's record: the batch as written, and its last thunk's timestamp, which GC finds it by. */
export interface BatchRecord extends Checked {
  readonly last: Timestamp
  readonly batch: Batch
}

/** One settlement batch's outcomes, ascending by timestamp; keyed by the last of them. */
export interface RunRecord extends Checked {
  readonly first: Timestamp
  readonly outcomes: ReadonlyArray<readonly [Timestamp, Outcome]>
}

/** An exactly-once record (it starts with the deciding thunk's timestamp). */
export interface TxnRow extends Checked {
  readonly record: string
}

export interface MetaRow extends Checked {
  readonly value: Value
}

export interface Schema extends DBSchema {
  latest: { key: string, value: LatestRow }
  batches: { key: BatchKey, value: BatchRecord, indexes: { byLast: Timestamp } }
  runs: { key: Timestamp, value: RunRecord }
  txns: { key: string, value: TxnRow }
  meta: { key: string, value: MetaRow }
  base: { key: number, value: BasePage | BaseIndex | RecordPage }
}

export type Name = StoreNames<Schema>
export type ReadTx = IDBPTransaction<Schema, Name[], 'readonly' | 'readwrite'>
export type WriteTx = IDBPTransaction<Schema, Name[], 'readwrite'>

/**
 * The IndexedDB database version, which is the store format. 1 kept one
 * record per thunk (with an index by sequence) and recorded outcomes only
 * for held thunks; 2 kept one record per batch, every version keyed [key, ts]
 * and one outcome record per thunk; 3 keeps each key's newest version and
 * one outcome record per settlement batch; 4 adds `base`, a snapshot's
 * values in pages; 5 adds a check to every record (txns and meta records
 * become objects to hold one). Versions 3 and 4 are upgraded in place (see
 * upgrade.ts: the meaning of what they hold does not change); a database of
 * another version is refused with StoreFormatError (see `IdbStore.open`).
 */
export const SCHEMA_VERSION = 5
export const ALL: Name[] = ['latest', 'batches', 'runs', 'txns', 'meta', 'base']
