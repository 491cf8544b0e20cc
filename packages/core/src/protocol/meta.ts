import type { Ballot, Cursor, EpochChange, GroupConfig } from '../types.js'
import type { Timestamp } from '../timestamp.js'
import type { Value } from '../value.js'
import type { DecisionProof } from './reconfig/proof.js'

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

/** The meta entry of the decided change that starts `change.epoch`, with its proof when it has one (so it can be passed on). */
export function decisionEntry (change: EpochChange, proof?: DecisionProof): readonly [string, Value] {
  return [decisionKey(change.epoch), (proof === undefined ? change : { change, proof }) as unknown as Value]
}

/** A meta record as a store returned it, as its type (stores keep what was written). */
export function metaValue<K extends keyof MetaRecords> (_name: K, value: Value | undefined): MetaRecords[K] | undefined {
  return value as unknown as MetaRecords[K] | undefined
}

/** A decision record as a store returned it (written without a proof: the change itself; with one: both). */
export function decisionValue (value: Value | undefined): { readonly change: EpochChange, readonly proof: DecisionProof | undefined } | undefined {
  if (value === undefined || value === null || typeof value !== 'object') return undefined
  const v = value as unknown as { change?: EpochChange, proof?: DecisionProof }
  if (v.change !== undefined) return { change: v.change, proof: v.proof }
  return { change: value as unknown as EpochChange, proof: undefined }
}
