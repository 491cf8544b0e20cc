import type { Ballot, Cursor, EpochChange, GroupConfig } from '../types.js'
import type { Timestamp } from '../timestamp.js'
import type { Value } from '../value.js'

/**
 * The meta records a peer persists, typed: the one place a record becomes a
 * store `Value` and is read back as its type.
 */

/** An acceptor's durable Paxos state for its epoch. */
export interface AcceptorState {
  readonly epoch: number
  readonly promised?: Ballot
  readonly accepted?: { readonly ballot: Ballot, readonly value: EpochChange }
}

/** Names of the meta records a peer persists in its store. */
export const META = {
  /** The evaluation cursor (see `Cursor`), written with every settled run. */
  cursor: 'cursor',
  /** The newest installed epoch's `GroupConfig`. */
  config: 'config',
  /** The acceptor's Paxos state for its epoch. */
  paxos: 'paxos',
  /** Milliseconds below which this voter may promise (the clock lease). */
  clockLease: 'clockLease',
  /** The settled frontier a strict write made durable (the write is what matters: it flushes the relaxed settlements before it). */
  durable: 'durable'
} as const

/** The meta record holding the decided change that started `epoch`. */
export function decisionKey (epoch: number): string {
  return `decision:${epoch}`
}

/** What each named meta record holds. */
export interface MetaRecords {
  readonly cursor: Cursor
  readonly config: GroupConfig
  readonly paxos: AcceptorState
  readonly clockLease: number
  readonly durable: Timestamp
}

/** A meta entry for a store batch, typed by the record's name. */
export function metaEntry<K extends keyof MetaRecords> (name: K, value: MetaRecords[K]): readonly [string, Value] {
  return [META[name], value as unknown as Value]
}

/** The meta entry of the decided change that starts `change.epoch`. */
export function decisionEntry (change: EpochChange): readonly [string, Value] {
  return [decisionKey(change.epoch), change as unknown as Value]
}

/** A meta record as a store returned it, as its type (stores keep what was written). */
export function metaValue<K extends keyof MetaRecords> (_name: K, value: Value | undefined): MetaRecords[K] | undefined {
  return value as unknown as MetaRecords[K] | undefined
}

/** A decision record as a store returned it. */
export function decisionValue (value: Value | undefined): EpochChange | undefined {
  return value as unknown as EpochChange | undefined
}
