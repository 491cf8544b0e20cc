import type { KeyRange } from '../key-range.js'
import type { Timestamp } from '../timestamp.js'

/** The state of reads in progress (reads.ts, confirm.ts), as plain data. */

/** Where a read's answer goes: a local call, a remote `read`, or (only a timestamp wanted) a remote `ts-req`. */
export type ReadReply =
  | { readonly kind: 'local', readonly call: number }
  | { readonly kind: 'remote', readonly to: string, readonly reqId: string }
  | { readonly kind: 'timestamp', readonly to: string, readonly reqId: string }

/** What a range read asks for: the live keys of `range` at the read's timestamp, in key order (descending with `reverse`), at most `limit`. */
export interface RangeRead {
  readonly range: KeyRange
  readonly limit?: number | undefined
  readonly reverse?: boolean | undefined
}

/**
 * A read-only transaction in progress. A strict read first gets a timestamp
 * (a voter mints one and confirms its epoch; an observer asks its home
 * voter), then waits until the frontier passes it, then reads the store.
 */
export interface ReadOp {
  readonly id: number
  readonly keys: readonly string[]
  /** A range read (then `keys` is empty). */
  readonly range?: RangeRead | undefined
  readonly reply: ReadReply
  readonly deadline: number
  /** `held`: a snapshot read that waits for a replica healing by snapshot. */
  phase: 'confirming' | 'requesting' | 'waiting' | 'reading' | 'held'
  ts: Timestamp | undefined
  /** While requesting: the voter asked, and when. */
  to: string
  sentAt: number
  /** Times it was read again at the frontier after the store refused its timestamp as too old. */
  rereads: number
  /** Read at exactly `ts` (another replica's part of a partitioned read): never moved to the frontier. */
  readonly fixed?: boolean
}

/** One round of read confirmation (see confirm.ts): the reads it serves, by id. */
export interface ConfirmRound {
  readonly round: number
  readonly epoch: number
  readonly oks: Set<string>
  readonly reads: number[]
  sentAt: number
}
