import type { ReadConsistency, ReadResult, SubmitRequest, Thunk, TxnResult, WatermarkEntry } from './types.js'
import type { Timestamp } from './timestamp.js'

/**
 * Messages peers exchange. The core only produces and consumes these plain
 * objects; a transport encodes them (see net-libp2p's PROTOCOL.md).
 */
export type Message =
  /** Coordinator → replicas: store these thunks (S-phase); carries the sender's watermark view. */
  | { readonly t: 'write'; readonly thunks: readonly Thunk[]; readonly wm: readonly WatermarkEntry[] }
  /** Voter → coordinator: these of your sequence numbers are durable here. */
  | { readonly t: 'ack'; readonly epoch: number; readonly seqs: readonly number[]; readonly wm: readonly WatermarkEntry[] }
  /** Watermark gossip: the sender's view of every voter's entry (merged by max). */
  | { readonly t: 'wm'; readonly wm: readonly WatermarkEntry[] }
  /** Ask for a coordinator's thunks `from..to` (inclusive). */
  | { readonly t: 'gap-req'; readonly coordinator: string; readonly epoch: number; readonly from: number; readonly to: number }
  /** Answer to gap-req: the thunks the sender holds of that range. */
  | { readonly t: 'gap-rep'; readonly thunks: readonly Thunk[] }
  /** Run a transaction; answer `replyTo` with submit-rep. */
  | { readonly t: 'submit'; readonly req: SubmitRequest; readonly replyTo: string }
  | { readonly t: 'submit-rep'; readonly clientTxnId: string; readonly result?: TxnResult; readonly error?: { readonly name: string; readonly message: string } }
  /** A read-only transaction; answer `replyTo` with read-rep. */
  | { readonly t: 'read'; readonly reqId: string; readonly keys: readonly string[]; readonly consistency: ReadConsistency; readonly replyTo: string }
  | { readonly t: 'read-rep'; readonly reqId: string; readonly result?: ReadResult; readonly error?: { readonly name: string; readonly message: string } }
  /** Observer → voter: mint a read timestamp (strict reads). */
  | { readonly t: 'ts-req'; readonly reqId: string }
  | { readonly t: 'ts-rep'; readonly reqId: string; readonly ts: Timestamp }
  /**
   * The sender's rolling result digest after its `count`-th evaluated thunk
   * (every replica evaluates the same thunks in the same order, so equal
   * counts must have equal digests; a difference is divergence).
   */
  | { readonly t: 'ck'; readonly count: number; readonly digest: string }
  /** Observer → voters: I follow the group; fan writes out to me. */
  | { readonly t: 'hello' }

export type MessageType = Message['t']
