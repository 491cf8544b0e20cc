import type { AppliedRun, ForwardedReads, RunPlan, RunRules } from '../apply.js'
import type { KeyRange } from '../key-range.js'
import type { Message } from '../messages.js'
import type { GcResult, SnapshotItems, SnapshotPart, StagedDigest, StoreBatch } from '../store.js'
import type { Timestamp } from '../timestamp.js'
import type { Value } from '../value.js'
import type { Ballot, Cursor, EpochChange, Revocation, GroupConfig, ReadConsistency, ReadResult, SubmitRequest, Thunk, Batch } from '../types.js'
import type { AcceptorState } from './meta.js'
import type { RangeRead } from './read-state.js'
import type { DecisionProof } from './reconfig/proof.js'
import type { LogEvent } from './vocabulary.js'

export type { AcceptorState }

/**
 * What `step` takes and what it returns. Inputs are messages, ticks, calls
 * of the public API and the completions of effects; effects are what the
 * driver carries out. Nothing is awaited inside `step`: a store operation is
 * an effect, and its result comes back as a later input.
 */

/** Two replicas disagree on the result digest after the same number of evaluated thunks. */
export interface Divergence {
  readonly peer: string
  readonly count: number
  readonly mine: string
  readonly theirs: string
}

/** The result of a store operation or a run application that `step` asked for. */
export type Completion =
  /** `frontier`: the frontier when the write began (everything below it is durable now, see horizon.ts). */
  | { readonly t: 'batches-persisted', readonly batches: readonly Batch[], readonly frontier?: Timestamp }
  /** A strict write of its own made everything below `frontier` durable. */
  | { readonly t: 'synced', readonly frontier: Timestamp }
  | { readonly t: 'gc-done', readonly horizon: Timestamp, readonly result: GcResult }
  /** A scrub read the whole state and found nothing damaged (a damaged record comes back as `state-damaged`). */
  | { readonly t: 'scrub-done' }
  /** A reader on the store's state below `at` is open for the export `id`. */
  | { readonly t: 'snapshot-exported', readonly id: string, readonly to: string, readonly at: Timestamp }
  /** The next part the export `id`'s reader read. */
  | { readonly t: 'snapshot-read', readonly id: string, readonly part: SnapshotPart }
  /** The store staged a chunk of the snapshot `id`: the digest lanes of its values and records. */
  | { readonly t: 'snapshot-staged', readonly id: string, readonly digest: StagedDigest }
  | { readonly t: 'snapshot-imported', readonly cursor: Cursor }
  /** What the store holds at the frontier, as a StateDigest (checked once when a peer opens). */
  | { readonly t: 'scrubbed', readonly state: readonly [number, number] }
  | { readonly t: 'lease-persisted', readonly lease: number }
  | { readonly t: 'acceptor-persisted', readonly acceptor: AcceptorState }
  | { readonly t: 'decision-persisted', readonly change: EpochChange, readonly proof: DecisionProof | undefined, readonly config: GroupConfig, readonly relayedBy?: string }
  /** This acceptor's signature of what it accepted (undefined: the signer failed; the answer goes unsigned). */
  | { readonly t: 'decision-signed', readonly to: string, readonly epoch: number, readonly ballot: Ballot, readonly sig: string | undefined }
  /** This coordinator's signature of its batch `seq` of `epoch` (undefined: no signer, or it failed; the batch goes unsigned). */
  | { readonly t: 'batch-signed', readonly epoch: number, readonly seq: number, readonly sig: string | undefined }
  /** Whether each forwarded batch's signature checked out against its coordinator's key (`unchecked`: this peer has no signer to check with). */
  | { readonly t: 'batches-verified', readonly from: string, readonly batches: readonly Batch[], readonly ok: readonly boolean[], readonly unchecked?: true }
  /** This voter's signature of a tree watermark message (undefined: no signer, or it failed; nothing goes down the tree). */
  | { readonly t: 'entries-signed', readonly message: Extract<Message, { t: 'tw' }>, readonly sig: string | undefined }
  /** Whether a tree watermark message passed on by `from` checked out against its voter's key. */
  | { readonly t: 'entries-verified', readonly from: string, readonly message: Extract<Message, { t: 'tw' }>, readonly ok: boolean, readonly unchecked?: true }
  /** Whether every signature of a relayed decision's proof checked out. */
  | { readonly t: 'decision-verified', readonly from: string, readonly change: EpochChange, readonly proof: DecisionProof, readonly ok: boolean }
  | { readonly t: 'run-applied', readonly run: readonly Thunk[], readonly applied: AppliedRun, readonly plan?: RunPlan }
  /** A partitioned run's forwarded reads, known before the run is written (the applier's `early`): sent at once. */
  | { readonly t: 'run-forwards', readonly run: readonly Thunk[], readonly plan: RunPlan, readonly forwards: readonly ForwardedReads[] }
  | { readonly t: 'values-read', readonly read: number, readonly result: ReadResult }
  /** What `read-forward` read (undefined: the store no longer holds that version, or failed to read it). */
  | { readonly t: 'forward-read', readonly to: string, readonly fwd: ForwardedReads | undefined }
  /** The store refused the read (SnapshotTooOldError: the versions it needs are no longer held); the read fails with it, the peer goes on. */
  | { readonly t: 'values-refused', readonly read: number, readonly error: { readonly name: string, readonly message: string } }
  /** A gap request's batches as the store held them (`damaged`: seqs whose records failed their check). */
  | { readonly t: 'batches-read', readonly replyTo: string, readonly coordinator: string, readonly epoch: number, readonly from: number, readonly batches: readonly Batch[], readonly damaged: readonly number[], readonly h?: readonly number[] }
  /** The store found a damaged record of the state (StoreCorruptionError) while reading for `read`, evaluating `run` (nothing of it settled), or otherwise: the replica heals. */
  | { readonly t: 'state-damaged', readonly error: { readonly name: string, readonly message: string }, readonly read?: number, readonly run?: readonly Thunk[] }
  | { readonly t: 'decision-read', readonly replyTo: string, readonly change: EpochChange | undefined, readonly proof?: DecisionProof | undefined }
  | { readonly t: 'store-failed', readonly error: { readonly name: string, readonly message: string } }

export type Input =
  /** A message from another peer, not yet validated. */
  | { readonly t: 'receive', readonly from: string, readonly message: unknown }
  /** A message this peer sent itself (delivered after the turn that sent it). */
  | { readonly t: 'self', readonly message: Message }
  /** The host's timer: every few milliseconds. */
  | { readonly t: 'tick' }
  /** The end of the turn that asked for it: coalesced writes and watermark go out. */
  | { readonly t: 'flush' }
  /** The peer was recovered and starts serving. */
  | { readonly t: 'start' }
  /** Public API calls; each `call` is answered by one `settle` effect. */
  | { readonly t: 'submit', readonly call: number, readonly req: SubmitRequest, readonly timeoutMs?: number | undefined }
  | { readonly t: 'read', readonly call: number, readonly keys: readonly string[], readonly range?: RangeRead | undefined, readonly consistency: ReadConsistency, readonly timeoutMs?: number | undefined }
  | { readonly t: 'leave', readonly call: number, readonly timeoutMs?: number | undefined }
  | { readonly t: 'revoke', readonly call: number, readonly targets: readonly Revocation[], readonly timeoutMs?: number | undefined }
  | { readonly t: 'abort', readonly call: number }
  | { readonly t: 'request-epoch-change' }
  /** Whether to ask to be a voter while not one (a tab voter shown again asks again; see step.ts `setCandidacy`). */
  | { readonly t: 'candidacy', readonly candidate: boolean }
  /** Keeps evaluation from starting a run until released (a consistent export). */
  | { readonly t: 'hold-evaluation' }
  | { readonly t: 'release-evaluation' }
  | { readonly t: 'close' }
  | Completion

export type PeerEvent =
  /** `reset`: the whole state was replaced (a snapshot was installed), so any key may have changed. */
  | { readonly t: 'applied', readonly written: readonly string[], readonly frontier: Timestamp, readonly reset?: boolean }
  | { readonly t: 'epoch', readonly epoch: number, readonly voters: readonly string[], readonly aborted: number }
  | { readonly t: 'diverged', readonly divergence: Divergence }

export type Effect =
  | { readonly t: 'send', readonly to: string, readonly message: Message }
  /** A strict store write; once durable, `done` is the next input (a failure is `store-failed`). */
  | { readonly t: 'persist', readonly batch: StoreBatch, readonly done: Completion }
  /** Evaluate and settle a run (the applier); answered by `run-applied`. */
  | { readonly t: 'apply', readonly run: readonly Thunk[], readonly base: Cursor, readonly rules: RunRules, readonly plan?: RunPlan }
  /** Read `keys` (or, with `range`, the range) below `at`; answered by `values-read`. */
  | { readonly t: 'read-values', readonly read: number, readonly keys: readonly string[], readonly range?: RangeRead | undefined, readonly at: Timestamp }
  /** Read a thunk's reads in partitions held here below its timestamp, for a replica that missed them (partitions.ts); answered by `forward-read`. */
  | { readonly t: 'read-forward', readonly to: string, readonly ts: Timestamp, readonly parts: readonly number[], readonly keys: readonly string[], readonly ranges: readonly KeyRange[] }
  /** Read a coordinator's batches `from..last`; answered by `batches-read`. */
  | { readonly t: 'read-batches', readonly replyTo: string, readonly coordinator: string, readonly epoch: number, readonly from: number, readonly last: number, readonly h?: readonly number[] }
  /** Sign `statement` (decisionStatement) with this peer's key; answered by `decision-signed` carrying `to`, `epoch`, `ballot`. */
  | { readonly t: 'sign-decision', readonly statement: Uint8Array, readonly to: string, readonly epoch: number, readonly ballot: Ballot }
  /** Sign `statement` (batchStatement of this coordinator's batch `seq` of `epoch`); answered by `batch-signed`. */
  | { readonly t: 'sign-batch', readonly statement: Uint8Array, readonly epoch: number, readonly seq: number }
  /** Check each batch's signature (batch-signing.ts verifyBatches); answered by `batches-verified`. */
  | { readonly t: 'verify-batches', readonly from: string, readonly batches: readonly Batch[] }
  /** Sign a tree watermark message (its `sig` not set yet) with this voter's key; answered by `entries-signed`. */
  | { readonly t: 'sign-entries', readonly statement: Uint8Array, readonly message: Extract<Message, { t: 'tw' }> }
  /** Check a tree watermark message's signature (`by`'s key over entriesStatement); answered by `entries-verified`. */
  | { readonly t: 'verify-entries', readonly from: string, readonly message: Extract<Message, { t: 'tw' }>, readonly statement: Uint8Array }
  /** Make sure this peer can reach `peer` (it is this peer's tree parent to be): dial it at `addrs`. */
  | { readonly t: 'connect', readonly peer: string, readonly addrs: readonly string[] }
  /** Hang up on `peer` (a member that is no voter, struck out for forging what it passed on). */
  | { readonly t: 'disconnect', readonly peer: string }
  /** Check every signature of `proof` over `statement` (checkProof); answered by `decision-verified`. */
  | { readonly t: 'verify-decision', readonly from: string, readonly change: EpochChange, readonly proof: DecisionProof, readonly statement: Uint8Array }
  /** Read the decision that started `epoch`; answered by `decision-read`. */
  | { readonly t: 'read-decision', readonly replyTo: string, readonly epoch: number }
  /** Collect history below `horizon` (exactly-once records below `records`); answered by `gc-done`. */
  | { readonly t: 'gc', readonly horizon: Timestamp, readonly records: Timestamp | undefined, readonly limit: number }
  /** Read every value and exactly-once record below `at` (their checks verified); answered by `scrub-done`, or `state-damaged`. */
  | { readonly t: 'scrub', readonly at: Timestamp }
  /** Open a reader (`openSnapshotReader`) on the store's state below `at`, the frontier (evaluation is paused, every run below it settled), kept by `id`; answered by `snapshot-exported`. */
  | { readonly t: 'export-snapshot', readonly id: string, readonly to: string, readonly at: Timestamp }
  /** Read the next part (about `maxBytes`) from the reader `id`; answered by `snapshot-read` (not at all once it is closed). */
  | { readonly t: 'read-snapshot', readonly id: string, readonly maxBytes: number }
  /** Close the reader `id` (after a read under way). */
  | { readonly t: 'close-snapshot', readonly id: string }
  /** Stage the next chunk of the snapshot `id` at `at` (`openSnapshotWriter`, opened with the first; one staging at a time); answered by `snapshot-staged`. */
  | { readonly t: 'stage-snapshot', readonly id: string, readonly at: Timestamp, readonly items: SnapshotItems }
  /** Replace the store's state with the snapshot `id` staged, at `cursor` (evaluation is paused); answered by `snapshot-imported`. */
  | { readonly t: 'import-snapshot', readonly id: string, readonly cursor: Cursor, readonly meta: ReadonlyArray<readonly [string, Value]> }
  /** Forget the snapshot `id` staged (refused, or given up). */
  | { readonly t: 'drop-snapshot', readonly id: string }
  /** Answers a public API call: `error` set, or `value` (a TxnResult, a ReadResult, or nothing). */
  | { readonly t: 'settle', readonly call: number, readonly value?: unknown, readonly error?: Error }
  /** Feed `input` to `step` after the current turn (microtask), not inside it. */
  | { readonly t: 'later', readonly input: Input }
  | { readonly t: 'event', readonly event: PeerEvent }
  | { readonly t: 'log', readonly event: LogEvent, readonly detail: Record<string, unknown> }
