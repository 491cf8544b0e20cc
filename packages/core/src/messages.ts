import type { Value } from './value.js'
import type { Ballot, Revocation, Cursor, EpochChange, EpochReport, ReadConsistency, ReadResult, SubmitRequest, Batch, TxnResult, WatermarkEntry, DurableReport, CheckpointReport } from './types.js'
import type { Timestamp } from './timestamp.js'
import type { DecisionProof } from './protocol/reconfig/proof.js'
import type { RangeRead } from './protocol/read-state.js'
import type { ForwardedReads } from './run-rules.js'
import type { KeyRange } from './key-range.js'

/**
 * To an observer that follows some partitions only (it gets projections of
 * batches, feeds.ts): of `coordinator`'s batches of `epoch`, those from
 * `from` to `to` that the message does not carry held nothing for it. On the
 * coordinator's own `write` or `wm` it does not name the coordinator (the sender); on a
 * `gap-rep` it does.
 */
export interface Span { readonly coordinator?: string, readonly epoch: number, readonly from: number, readonly to: number }

/**
 * Messages peers exchange. The core only produces and consumes these plain
 * objects; a transport encodes them (see net-libp2p's PROTOCOL.md).
 */
export type Message =
  /** Coordinator → replicas: store these batches (S-phase); `wm` is the sender's own watermark entry (receivers take no one's entry second-hand). */
  | { readonly t: 'write'; readonly batches: readonly Batch[]; readonly wm: readonly WatermarkEntry[]; readonly span?: Span }
  /** Voter → coordinator: these of your batches (by seq) are durable here; `wm` is the sender's own entry. */
  | { readonly t: 'ack'; readonly epoch: number; readonly seqs: readonly number[]; readonly wm: readonly WatermarkEntry[] }
  /** Watermark gossip: the sender's own entry (a receiver merges it by max into that voter's slot, and takes it only from that voter). */
  | { readonly t: 'wm'; readonly wm: readonly WatermarkEntry[]; readonly span?: Span; readonly quiet?: true; readonly leaving?: true }
  /** Other voters' entries, relayed by the voter they sent them to while busy (promise.ts, the entry hub). */
  | { readonly t: 'wmr'; readonly wm: readonly WatermarkEntry[] }
  /** Ask for a coordinator's batches `from..to` (seqs, inclusive); `h`: an observer's partitions, to get their projections (partition.ts projectBatch). */
  | { readonly t: 'gap-req'; readonly coordinator: string; readonly epoch: number; readonly from: number; readonly to: number; readonly h?: readonly number[] }
  /** Answer to gap-req: the batches the sender holds of that range (projected when asked with `h`, and `span` then says which seqs held nothing for the asker); `gone`: the request whose start the sender evaluated past and collected (the asker needs a snapshot). */
  | { readonly t: 'gap-rep'; readonly batches: readonly Batch[]; readonly gone?: { readonly coordinator: string, readonly epoch: number, readonly from: number }; readonly span?: Span }
  /** Run a transaction; answer `replyTo` with submit-rep. */
  | { readonly t: 'submit'; readonly req: SubmitRequest; readonly replyTo: string }
  | { readonly t: 'submit-rep'; readonly clientTxnId: string; readonly result?: TxnResult; readonly error?: { readonly name: string; readonly message: string } }
  /** A read-only transaction; answer `replyTo` with read-rep. */
  | { readonly t: 'read'; readonly reqId: string; readonly keys: readonly string[]; readonly range?: RangeRead; readonly consistency: ReadConsistency; readonly replyTo: string; readonly at?: Timestamp }
  | { readonly t: 'read-rep'; readonly reqId: string; readonly result?: ReadResult; readonly error?: { readonly name: string; readonly message: string } }
  /** Observer → voter: mint a read timestamp (strict reads). */
  | { readonly t: 'ts-req'; readonly reqId: string }
  | { readonly t: 'ts-rep'; readonly reqId: string; readonly ts: Timestamp }
  /**
   * The sender's rolling result digest after its `count`-th evaluated thunk
   * (every replica evaluates the same thunks in the same order, so equal
   * counts must have equal digests; a difference is divergence).
   */
  | { readonly t: 'ck'; readonly count: number; readonly digest: string; readonly h?: string }
  /**
   * Observer → voters: I follow the group at `epoch`; fan writes out to me.
   * `candidate`: I would serve as a voter (relays; voters decide whether to add me).
   */
  | { readonly t: 'hello', readonly epoch?: number, readonly candidate?: boolean, readonly parts?: readonly number[], readonly tree?: TreeHello }
  /**
   * The dissemination tree (tree.ts): the receiver hangs under `parent` (the
   * sender itself: taken as its child; another: try that one, at `addrs`;
   * none: not placed, back to the voters).
   */
  | { readonly t: 'place'; readonly parent?: string; readonly addrs?: readonly string[] }
  /**
   * Tree watermark: the entries of the voters of their epoch as voter `by`
   * holds them, the durable reports and digest checkpoints it has, and `at`,
   * a stamp that only rises, signed by `by` (entriesStatement); passed on
   * down the tree as they are.
   */
  | { readonly t: 'tw'; readonly at: number; readonly wm: readonly WatermarkEntry[]; readonly dur?: readonly DurableReport[]; readonly ck?: readonly CheckpointReport[]; readonly by: string; readonly sig: string }
  /** Reconfiguration, phase 1: a voter of `epoch` asks the others to promise `ballot` (and stop taking `epoch`'s writes). */
  | { readonly t: 'rc-prepare'; readonly epoch: number; readonly ballot: Ballot }
  /** Phase 1 answer: the promise, any value already accepted, and what the voter holds of `epoch`. */
  | { readonly t: 'rc-promise'; readonly epoch: number; readonly ballot: Ballot; readonly accepted?: { readonly ballot: Ballot, readonly value: EpochChange }; readonly report: EpochReport }
  /** Phase 2: accept `value` under `ballot`. */
  | { readonly t: 'rc-accept'; readonly epoch: number; readonly ballot: Ballot; readonly value: EpochChange }
  /** Phase 2 answer; `sig`: the acceptor's signature of what it accepted (decisionStatement, hex), when it has keys. */
  | { readonly t: 'rc-accepted'; readonly epoch: number; readonly ballot: Ballot; readonly sig?: string }
  /** Refusal: the sender already promised the higher `ballot`. */
  | { readonly t: 'rc-nack'; readonly epoch: number; readonly ballot: Ballot }
  /**
   * A majority of the old epoch's voters accepted `value`: it is decided.
   * Taken from a voter of epoch `value.epoch - 1`, or from anyone with a
   * `proof` (that majority's signatures) the receiver checks.
   */
  | { readonly t: 'rc-decided'; readonly value: EpochChange; readonly proof?: DecisionProof }
  /** An admin asks a voter to revoke members or invites (in one epoch change); answered with revoke-rep once an installed epoch holds them (`epoch`). */
  | { readonly t: 'revoke'; readonly reqId: string; readonly targets: readonly Revocation[] }
  | { readonly t: 'revoke-rep'; readonly reqId: string; readonly epoch?: number; readonly error?: { readonly name: string; readonly message: string } }
  /** A voter about to serve a strict read asks: is `epoch` still current and unsealed for you? */
  | { readonly t: 'confirm'; readonly epoch: number; readonly round: number }
  /** Yes (sent only then). */
  | { readonly t: 'confirmed'; readonly epoch: number; readonly round: number }
  /** Asks for the decision that ended `epoch` (a replica that fell behind). */
  | { readonly t: 'rc-fetch'; readonly epoch: number }
  /**
   * A voter's durable frontier (every thunk below it evaluated here and the
   * settlement on disk) and the point below which it collected its history.
   * Every replica GCs below the least durable frontier of the current voters
   * (less its retention); one whose frontier is below a voter's `gc` catches
   * up by snapshot.
   */
  | { readonly t: 'dur'; readonly durable: Timestamp; readonly gc: Timestamp }
  /** Asks a voter for its StateDigest after its `count`-th evaluated thunk (to vouch for a snapshot taken there). */
  | { readonly t: 'st-req'; readonly count: number; readonly h?: string }
  /** The answer: the digest's two lanes, or none when this voter cannot vouch (no longer holds it, or is healing). */
  | { readonly t: 'st-rep'; readonly count: number; readonly state?: readonly [number, number] }
  /** Asks a voter for snapshot `id` from item `offset` on (the first request makes the voter export one for the sender). */
  | { readonly t: 'snap-req'; readonly id: string; readonly chunk: number }
  /** A voter declines to export snapshot `id` (healing, behind, exporting, full): the asker turns to another voter soon, not at its timeout. */
  | { readonly t: 'snap-no'; readonly id: string; readonly why: string }
  /**
   * Chunk `chunk` (numbered from 0) of snapshot `id`: the state below `at`,
   * which is the evaluation `cursor`'s frontier, entries first (in key order),
   * then exactly-once records. The `last` chunk carries `digest`, the
   * StateDigest of the whole snapshot (its source streams it as it reads, so
   * neither the digest nor the size is known before).
   */
  | {
    readonly t: 'snap-chunk'; readonly id: string; readonly at: Timestamp; readonly cursor: Cursor; readonly chunk: number; readonly last: boolean; readonly digest?: string
    readonly entries: ReadonlyArray<readonly [string, Value]>; readonly txns: ReadonlyArray<readonly [string, string]>
  }

  /**
   * Partitioned groups (DESIGN.md §13): a replica of some partitions tells
   * a thunk's other replicas what the thunk reads in them, as of just
   * before it (`fwd`); a replica that missed it asks (`fwd-req`, by thunk
   * timestamp). A replica that evaluated a thunk tells its coordinator the
   * result when the coordinator does not evaluate it (`res`; asked with
   * `res-req`).
   */
  | { readonly t: 'fwd'; readonly items: readonly ForwardedReads[] }
  | { readonly t: 'fwd-req'; readonly items: ReadonlyArray<{ readonly ts: Timestamp, readonly keys: readonly string[], readonly ranges?: readonly KeyRange[] }> }
  | { readonly t: 'res'; readonly items: ReadonlyArray<{ readonly ts: Timestamp, readonly clientTxnId: string, readonly result: TxnResult }> }
  | { readonly t: 'res-req'; readonly stamps: readonly Timestamp[] }
  /** An observer of some partitions → voters: a strict read waits at `ts`; send me your watermark entry (and span) now, and again until it passes `ts` (feeds.ts). */
  | { readonly t: 'wm-want'; readonly ts: Timestamp }
  /** Asks a replica of `parts` for each one's StateDigest at frontier `at` (to vouch for a snapshot's parts, part-votes.ts). */
  | { readonly t: 'pst-req'; readonly at: Timestamp; readonly parts: readonly number[] }
  /** The answer: [partition, lane, lane], or [partition] when this replica cannot tell. */
  | { readonly t: 'pst-rep'; readonly at: Timestamp; readonly states: ReadonlyArray<readonly number[]> }

export type MessageType = Message['t']

/** A tree observer's hello (tree.ts): the peer it hangs under, or asks to (none: not placed); its subtree's size; where to reach it; peers it will not hang under (they forged). */
export interface TreeHello { readonly parent?: string, readonly size: number, readonly addrs?: readonly string[], readonly not?: readonly string[] }

