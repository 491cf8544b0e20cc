import type { DBSchema, IDBPTransaction, StoreNames } from 'idb'
import type { Batch, HeldVersion, Outcome, Timestamp, Value } from '@tideline/core'

/*
 * Layout: one IndexedDB database per replica, five object stores.
 *
 *   latest   key                       → { ts, value }: the key's newest version (value undefined: a deletion)
 *   batches  [coordinator, epoch, seq] → { last, batch }; index byLast (last = its last thunk's ts)
 *   runs     ts of its last thunk      → { first, outcomes: [ts, outcome][] }: one settlement batch's outcomes
 *   txns     clientTxnId               → exactly-once record
 *   meta     name                      → value
 *   base     page number               → { ts, keys, values }: a snapshot's values, PAGE_KEYS at a time (see BaseLayer);
 *            -1 → { firsts, start }: each page's first key, and the number of the first page;
 *            pages of a snapshot being staged in the other range, and its records ({ records })
 *
 * Array keys compare element by element, numbers numerically and strings by
 * UTF-16 code unit, as JS strings do: a range of one coordinator's batches is
 * one getAll over [c, e, from] … [c, e, to], and timestamps sort as their text.
 *
 * Only each key's newest version is on disk; the versions it replaced stay in
 * memory for a window (VersionWindow, see IdbStore).
 */

/** A key's newest version as `latest` holds it. */
export type LatestRecord = HeldVersion<Value | undefined>

export type BatchKey = [coordinator: string, epoch: number, seq: number]

/** A page of a snapshot's values: ascending keys, each with its value, all as of `ts`. */
export interface BasePage {
  readonly ts: Timestamp
  readonly keys: readonly string[]
  readonly values: readonly Value[]
}

/** A batch's record: the batch as written, and its last thunk's timestamp, which GC finds it by. */
export interface BatchRecord {
  readonly last: Timestamp
  readonly batch: Batch
}

/** One settlement batch's outcomes, ascending by timestamp; keyed by the last of them. */
export interface RunRecord {
  readonly first: Timestamp
  readonly outcomes: ReadonlyArray<readonly [Timestamp, Outcome]>
}

export interface Schema extends DBSchema {
  latest: { key: string, value: LatestRecord }
  batches: { key: BatchKey, value: BatchRecord, indexes: { byLast: Timestamp } }
  runs: { key: Timestamp, value: RunRecord }
  txns: { key: string, value: string }
  meta: { key: string, value: Value }
  base: { key: number, value: BasePage | { firsts: string[], start?: number } | { records: ReadonlyArray<readonly [string, string]> } }
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
 * values in pages (a version 3 database is upgraded by adding it, empty: the
 * meaning of what it holds does not change). A database of another version
 * is refused with StoreFormatError, never upgraded in place (see
 * `IdbStore.open`).
 */
export const SCHEMA_VERSION = 4
export const ALL: Name[] = ['latest', 'batches', 'runs', 'txns', 'meta', 'base']
