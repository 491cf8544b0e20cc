import type { Timestamp } from './timestamp.js'
import type { Outcome, Thunk } from './types.js'
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
  readonly thunks?: readonly Thunk[]
  readonly settle?: readonly Settlement[]
  readonly meta?: ReadonlyArray<readonly [name: string, value: Value]>
  /** Exactly-once records: clientTxnId → the record of the thunk that decided it (write-once). */
  readonly txns?: ReadonlyArray<readonly [clientTxnId: string, record: string]>
  readonly durability?: Durability
}

/**
 * The MVCC store a replica keeps its thunks, versions and bookkeeping in.
 * Implementations: MemoryStore (tests, simulation), IndexedDB, a Node store.
 */
export interface Store {
  /** Applies a batch atomically. */
  write(batch: StoreBatch): Promise<void>
  /** The newest version of `key` with a timestamp strictly below `below`. */
  latest(key: string, below: Timestamp): Promise<Version | undefined>
  /** The values of `latest` for many keys at once (undefined: absent or deleted); one store transaction where that matters. */
  latestValues(keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>>
  /** The exactly-once records of these client transaction ids. */
  txnRecords(clientTxnIds: readonly string[]): Promise<Array<string | undefined>>
  /** A coordinator's thunks with `from <= seq <= to` in one epoch, ascending, as far as held. */
  thunkRange(coordinator: string, epoch: number, from: number, to: number): Promise<Thunk[]>
  /** Every thunk that has no settlement yet, ascending by timestamp. */
  unsettled(): Promise<Thunk[]>
  /** A settled thunk's outcome. */
  outcome(ts: Timestamp): Promise<Outcome | undefined>
  getMeta(name: string): Promise<Value | undefined>
  /** Every live key with its newest value below `below`, ascending by key. */
  entries(below: Timestamp): Promise<Array<[string, Value]>>
  close(): Promise<void>
}
