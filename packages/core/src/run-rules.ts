import { DEFAULT_TXN_RETENTION_MS, DEFAULT_TXN_SKEW_MS } from './constants.js'
import { timestampMs, type Timestamp } from './timestamp.js'
import type { Cursor, GenesisIdentity, GroupConfig, Outcome, Revoked, Thunk, TxnResult } from './types.js'
import type { Value } from './value.js'
import type { PartitionSpec } from './partition.js'

/**
 * The rules evaluation follows besides the procedures, and what applying a
 * run returns: shared by the applier (apply.ts) and the pure settlement
 * (settle.ts).
 */

/** What applying a run did: one result per thunk (in order), the cursor it persisted, and every key it wrote. */
export interface AppliedRun {
  /** Undefined for a thunk this (partitioned) replica only forwarded reads for. */
  readonly results: Array<TxnResult | undefined>
  readonly cursor: Cursor
  readonly written: string[]
  /** The digest after every DIGEST_CHECKPOINT_EVERY-th thunk of the replica's history that fell in this run. */
  readonly checkpoints: Array<{ readonly count: number, readonly digest: string }>
  /** The StateDigest after each thunk of the run, two lanes each (absent: the cursor has no state digest). */
  readonly states?: number[]
  /** A partitioned replica's reads of the thunks it forwards for (settle.ts), in run order. */
  readonly forwards?: ForwardedReads[]
  /** A partitioned replica: each partition's StateDigest after each thunk that changed it, as [ts, partition, lane, lane]. */
  readonly partStates?: Array<readonly [Timestamp, number, number, number]>
}

/** The group-wide rules evaluation follows besides the procedures (from GroupConfig; the same on every replica). */
export interface RunRules {
  readonly txnRetentionMs: number
  readonly txnSkewMs: number
  /** What callers sign for (callStatement). */
  readonly groupId: string
  /** Every call must carry a caller signature that holds (GroupConfig.signedCalls). */
  readonly signedCalls: boolean
  /** GroupConfig.revoked: a verified caller (or its invite) revoked below a call's timestamp is refused. */
  readonly revoked: readonly Revoked[]
  /** GroupConfig.genesis: what callers' invites are checked against (absent: callers are known by id alone). */
  readonly genesis?: GenesisIdentity
  /** GroupConfig.partitions: how keys map to partitions (absent: one partition, held by every replica). */
  readonly partitions?: PartitionSpec
}

export function runRules (config: GroupConfig): RunRules {
  return { txnRetentionMs: config.txnRetentionMs ?? DEFAULT_TXN_RETENTION_MS, txnSkewMs: config.txnSkewMs ?? DEFAULT_TXN_SKEW_MS, groupId: config.groupId, signedCalls: config.signedCalls ?? false, revoked: config.revoked ?? [], ...(config.genesis === undefined ? {} : { genesis: config.genesis }), ...(config.partitions === undefined ? {} : { partitions: config.partitions }) }
}

/** The exactly-once record: which thunk decided a clientTxnId, and how. A string, so stores copy nothing. */
export interface TxnRecord { readonly ts: Timestamp, readonly outcome: Outcome }

const BYTES_TAG = '\u0000bytes'
const toJson = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => x instanceof Uint8Array ? { [BYTES_TAG]: Array.from(x) } : x)
const fromJson = (s: string): unknown => JSON.parse(s, (_k, x: unknown) => {
  if (x !== null && typeof x === 'object' && BYTES_TAG in x) return new Uint8Array((x as Record<string, number[]>)[BYTES_TAG] as number[])
  return x
})
/** `ts` + `c` + value JSON, or `ts` + `a` + [error, reason] JSON. */
export const encodeRecord = (ts: Timestamp, o: Outcome): string =>
  o.status === 'committed' ? `${ts}c${o.value === null ? '' : toJson(o.value)}` : `${ts}a${JSON.stringify([o.error, o.reason])}`
export const decodeRecord = (s: string): TxnRecord => {
  const ts = s.slice(0, 36) as Timestamp
  const body = s.slice(37)
  if (s[36] === 'c') return { ts, outcome: { status: 'committed', value: body === '' ? null : fromJson(body) as Value } }
  const [error, reason] = JSON.parse(body) as [string, string]
  return { ts, outcome: { status: 'aborted', error, reason } }
}

export function toResult (ts: Timestamp, outcome: Outcome, duplicate: boolean): TxnResult {
  const base = outcome.status === 'committed'
    ? { status: 'committed' as const, value: outcome.value, ts }
    : { status: 'aborted' as const, reason: outcome.reason, error: outcome.error, ts }
  return duplicate ? { ...base, duplicate: true } : base
}

/**
 * Why a thunk may not run at its timestamp whatever the store holds:
 * its clientTxnId was first submitted more than the retention before it
 * (ExpiredTransactionError), or its `firstAt` lies more than the skew
 * after it (ClockSkewError; coordinators refuse those, so only a faulty one
 * sends it). Checked before the exactly-once record, which some replicas
 * may have collected by then and others not: the answer must not depend on
 * it. Undefined: it may run.
 *
 * Why a record is never missed: a coordinator mints only when `firstAt <=
 * ts + skew`, so a thunk that decided a clientTxnId at `ts1` has `ts1 >=
 * firstAt - skew`; a retry at `ts2` runs only when `ts2 - firstAt <=
 * retention`, so `ts2 - ts1 <= retention + skew`; and a replica collects
 * records below its GC point (at most its frontier, at most `ts2` while
 * `ts2` is still to be evaluated) less `retention + skew`.
 */
export function refusedAt (thunk: Thunk, rules: RunRules): Outcome | undefined {
  const age = timestampMs(thunk.ts) - thunk.firstAt
  if (age > rules.txnRetentionMs) {
    return { status: 'aborted', error: 'ExpiredTransactionError', reason: `${thunk.clientTxnId} was first submitted ${age} ms before ${thunk.ts}, longer ago than the group's txnRetentionMs (${rules.txnRetentionMs}): whether an earlier attempt took effect is no longer known` }
  }
  if (-age > rules.txnSkewMs) {
    return { status: 'aborted', error: 'ClockSkewError', reason: `${thunk.clientTxnId} claims a first submission ${-age} ms after its timestamp ${thunk.ts}, more than the group's txnSkewMs (${rules.txnSkewMs})` }
  }
  return undefined
}


/**
 * A partitioned replica's part in a run (DESIGN.md §13); absent, a replica
 * evaluates every thunk and holds every key.
 */
export interface RunPlan {
  /** The partitions this replica holds. */
  readonly holding: readonly number[]
  /** Per thunk of the run: EVAL, FORWARD, both, or FORWARD | AHEAD. */
  readonly modes: readonly number[]
  /** Per thunk evaluated here: the reads of partitions it does not hold, as their replicas forwarded them. */
  readonly remote: ReadonlyArray<readonly ForwardedReads[] | undefined>
}

/**
 * What one thunk reads in some partitions, as of just before it, as a
 * replica of those partitions forwards it to the thunk's other replicas.
 */
export interface ForwardedReads {
  readonly ts: Timestamp
  /** The partitions covered, whole: every key the thunk reads in them is here. */
  readonly parts: readonly number[]
  /** The live keys the thunk reads there (declared keys and the live keys of declared ranges) with their values; a key not listed is absent. */
  readonly values: ReadonlyArray<readonly [string, Value]>
  /** Each declared range there: start, end (null: none), its live keys in order. */
  readonly ranges: ReadonlyArray<readonly [string, string | null, readonly string[]]>
}

