import { Hasher } from '../hash.js'
import { TS_ZERO, TimestampMinter, peerTag, type Timestamp } from '../timestamp.js'
import type { ProcedureRegistry } from '../procedures.js'
import type { Ballot, Batch, EpochChange, EpochReport, GroupConfig, Revocation, Role, SubmitRequest } from '../types.js'
import type { AcceptorState, Divergence, Effect } from './effects.js'
import type { Counter } from './vocabulary.js'
import type { ConfirmRound, ReadOp } from './read-state.js'
import { WatermarkTable } from './watermark-table.js'
import { newHistoryState, type HistoryState } from './history-state.js'
import { newDetectorState, type DetectorState } from './reconfig/silence.js'
import { newPartState, type PartState } from './part-state.js'
import { newTreeState, type TreeOptions, type TreeState } from './tree-state.js'

export type { ConfirmRound, ReadOp, ReadReply } from './read-state.js'
export type { CoordinatorState, Inflight, OpenThunk } from './coordinator-state.js'
import type { CoordinatorState } from './coordinator-state.js'
/** A peer's protocol state as plain data; handlers are functions of (state, environment, input). Everything of one epoch lives in its record, so installing an epoch builds a new record instead of resetting fields. */

/** A peer's view of one coordinator's sequence of batches. */
export interface Stream {
  /** Every seq <= have is persisted here (evaluated or held), or aborted by the epoch's cut. */
  have: number
  /** The batch evaluation is in (or will start next). */
  evalNext: number
  /** The next thunk to evaluate in batch `evalNext`. */
  evalIndex: number
  /** Persisted, not yet wholly evaluated and settled, by seq. */
  readonly held: Map<number, Batch>
  /** Seqs handed to the writer, not persisted yet. */
  readonly receiving: Set<number>
  gapAskedAt: number
  gapTarget: number
  /** Set when the epoch ended: the last kept seq, and the aborted ones below it. */
  end?: number
  skip?: ReadonlySet<number>
  damaged?: Set<number> // persisted here once, found damaged by the store, not yet fetched again (damage.ts)
  voids?: Set<number> // seqs that held nothing for this observer of some partitions (feeds.ts), not evaluated past yet
}

export interface Proposal {
  readonly epoch: number
  readonly ballot: Ballot
  readonly startedAt: number
  readonly promises: Map<string, { accepted?: { ballot: Ballot, value: EpochChange } | undefined, report: EpochReport }>
  /** Voters that accepted → their signature of the value (undefined: unsigned). */
  readonly accepts: Map<string, string | undefined>
  value?: EpochChange
}

/** One epoch: its voters, sequences and watermark, and (while current) what this peer coordinates and agrees in it. Old epochs stay until evaluated through their cut. */
export interface EpochRecord {
  readonly epoch: number
  readonly voters: readonly string[]
  readonly majority: number
  readonly tags: ReadonlyMap<string, string>
  readonly streams: ReadonlyMap<string, Stream>
  readonly wm: WatermarkTable
  /** Set when the next epoch is decided: every kept thunk of this epoch lies at or below it, every later one above. */
  floor?: Timestamp
  readonly coordinator: CoordinatorState
  acceptor: AcceptorState
  proposal: Proposal | undefined
  sealedAt: number
  nextProposeAt: number
  /** Since when this voter has wanted a different voter set (or been sealed too long). */
  changeWantedSince: number | undefined
  startedAt: number
  /** Voter → when this peer last heard from it in this epoch. */
  readonly lastHeard: Map<string, number>
  /** Voter → when its watermark entry last moved in this epoch. */
  readonly wmMovedAt: Map<string, number>
  /** Voters gone quiet (quiesce.ts) → since when one owes an answer to this peer's entry (Infinity: it owes none). */
  readonly quiet: Map<string, number>
  /** Voters handing over (their entry said `leaving`) → when this peer last heard so (failure-detector.ts `leavingNow`). */
  readonly leavers: Map<string, number>
}

/** Who waits for a submission's result: a local call, or a client (or observer) that sent it. */
export type Waiter =
  | { readonly kind: 'local', readonly call: number, readonly deadline: number }
  | { readonly kind: 'remote', readonly to: string }

/** A submission an observer forwarded to a voter. */
export interface Forward {
  readonly req: SubmitRequest
  sentAt: number
  /** The voter it was last sent to. */
  to: string
}

/** The acceptor's state is persisted one write at a time; `pending` is the newest waiting to be written. */
export interface AcceptorWrites {
  writing: boolean
  pending: AcceptorWrite | undefined
}

/** An acceptor state to persist, and the answer to send once it is durable (if it is still the current one). */
export interface AcceptorWrite {
  readonly acceptor: AcceptorState
  readonly answer: { readonly t: 'rc-promise' | 'rc-accepted', readonly to: string, readonly epoch: number, readonly ballot: Ballot }
}

/** What a peer is doing, as one value. Sealed, voting and observing are read from the current epoch (see `statusOf`); running, installing, failed and closed are the stored phase. */
export type Status = 'observing' | 'voting' | 'sealed' | 'installing' | 'failed' | 'closed'
export type Phase = 'running' | 'installing' | 'failed' | 'closed'

/** The protocol's tunables, defaults applied (see `PeerInit` for each one's meaning). */
export interface PeerOptions {
  readonly writeRetryMs: number
  readonly gossipIntervalMs: number
  readonly entryHub: boolean
  readonly idleHeartbeatMs: number
  readonly quiesceAfterMs: number
  readonly gapRetryMs: number
  readonly callTimeoutMs: number
  readonly maxSkewMs: number
  readonly clockLeaseMs: number
  readonly maxValueBytes: number
  readonly maxCallsPerSec: number
  readonly suspectMs: number
  readonly suspectMinMs: number
  readonly proposeTimeoutMs: number
  readonly maxVoters: number
  readonly maxRunThunks: number
  readonly retainMs: number
  readonly gcIntervalMs: number
  readonly scrubIntervalMs: number
  readonly gcStepLimit: number
  readonly snapshotChunkBytes: number
  readonly candidate: boolean
  readonly admitVoter: (peerId: string) => boolean
  /** See PeerInit: the runtime has keys (`signer`), `contacts`, `mayCall`. */
  readonly signs: boolean
  readonly contacts: () => readonly string[]
  readonly mayCall: (peerId: string) => boolean
  readonly mayRevoke: (peerId: string) => boolean
  readonly partitions: readonly number[] | undefined
  readonly tree: TreeOptions
}

export type RevokeWaiter =
  | { readonly kind: 'local', readonly call: number, readonly deadline: number }
  | { readonly kind: 'remote', readonly to: string, readonly reqId: string }

/** Revocations this voter carries into its next epoch change (by key), and the requests waiting for them; a non-voter's own requests, sent on to its home voter (by request id). */
export interface PendingRevocations {
  readonly targets: Map<string, Revocation>
  readonly waiters: Array<{ readonly waiter: RevokeWaiter, readonly keys: readonly string[], readonly deadline: number }>
  readonly forwarded: Map<string, { readonly call: number, readonly deadline: number, readonly targets: readonly Revocation[], to: string }>
}

export interface PeerState {
  readonly id: string
  readonly registry: ProcedureRegistry
  readonly options: PeerOptions
  /** The time of the input being handled (the host's clock). */
  now: number
  /** Effects of the input being handled, in order. */
  effects: Effect[]
  phase: Phase
  /** Why the peer failed (a store error), once it did. */
  failure: string | undefined
  readonly minter: TimestampMinter
  /** The current epoch's configuration. */
  config: GroupConfig
  /** The current epoch (the newest this peer installed). */
  current: EpochRecord
  /** Epochs from the one being evaluated up to the current one. */
  readonly epochs: Map<number, EpochRecord>
  evaluatingEpoch: number

  // coordinator, across epochs
  /** Smoothed time from mint to majority, so retransmission backs off when the group is slow rather than flood it. */
  srtt: number
  /** clientTxnIds this peer minted a thunk for that is not evaluated yet. */
  readonly minted: Map<string, Timestamp>
  clockLease: number
  leaseWriting: boolean
  /** A promise was held back because it reached past the clock lease (published once the lease is renewed). */
  promiseBlocked: boolean
  lastGossip: number
  /** Observers → when last heard (a voter fans writes and watermarks out to them). */
  readonly observers: Map<string, number>
  flushScheduled: boolean
  watermarkDirty: boolean

  // reconfiguration, across epochs
  readonly acceptorWrites: AcceptorWrites
  highestBallot: number
  forcePropose: boolean
  /** Candidates (peers asking to be voters) → when last heard, and at which epoch. */
  readonly candidates: Map<string, { seen: number, epoch: number }>
  leaving: boolean
  /** Whether it asks to be a voter while not one (PeerInit `candidate`; `setCandidate` changes it: a tab voter hidden and shown again). */
  candidate: boolean
  /** Local `leave` calls → their deadlines. */
  readonly leaves: Map<number, number>
  /** Revocations this voter carries into its next epoch change, and who waits for them (reconfig/revoke.ts). */
  readonly revocations: PendingRevocations
  /** Submissions received while sealed: minted once the next epoch is installed. */
  readonly deferred: Map<string, SubmitRequest>
  /** Catching up (epoch-news.ts): when this peer last asked for a decision, and its contacts; a passed-on decision in its check. */
  lastEpochFetch: number
  lastReachOut: number
  checkingDecision: boolean
  /** The highest group watermark this peer has seen, across epochs (TS_ZERO: none yet); a candidate's measure of keeping up. */
  knownWatermark: Timestamp
  readonly staleToldAt: Map<string, number>
  /** How often each voter is heard from, and when this peer meant to wake (reconfig/silence.ts). */
  readonly detector: DetectorState

  // replica
  persistQueue: Batch[]
  /** This coordinator's sealed batches waiting for their signature, by `epoch/seq` in seal order (persisted once signed, in that order). */
  readonly signing: Map<string, { readonly batch: Batch, signed: Batch | undefined }>
  /** Peers that passed on forged batches: how many, and until when their batches are refused unread (forwarded.ts). */
  readonly shunned: Map<string, { readonly strikes: number, readonly last: number, readonly until: number }>
  /** The dissemination tree (tree.ts). */
  readonly tree: TreeState
  writing: boolean
  evaluation: 'idle' | 'running' | 'held'
  /** All thunks below this are evaluated and settled here. */
  frontier: Timestamp
  lastEvaluated: Timestamp
  evaluatedCount: number
  /** Rolling digest over every evaluated thunk, fed in timestamp order. */
  hasher: Hasher
  /** The StateDigest lanes of everything below the frontier (undefined: not known yet, see Cursor.state). */
  stateDigest: readonly [number, number] | undefined

  // requests
  readonly waiters: Map<string, Waiter[]>
  readonly forwards: Map<string, Forward>
  readonly reads: Map<number, ReadOp>
  /** Remote read ids and timestamp-request ids (`ts-req`) this peer sent → its read. */
  readonly readIds: Map<string, number>
  nextReadId: number
  /** When this incarnation of the peer started: request ids carry it, so an answer to a request sent before a restart never matches one sent after. */
  readonly startedAt: number
  /** See homeVoter. */
  home: string | undefined
  lastHello: number
  /** Earliest deadline of a local waiter (a lower bound; Infinity when none). */
  nextDeadline: number
  confirmQueue: number[]
  confirmRound: number
  confirming: ConfirmRound | undefined

  // divergence
  readonly counters: Partial<Record<Counter, number>>
  /** count → digest after that many evaluated thunks (the last CHECKPOINTS_KEPT). */
  readonly checkpoints: Map<number, string>
  lastCheckpointSent: number
  /** The checkpoint count last sent (an unchanged one is not sent again), and when this peer last did work (schedule.ts). */
  lastCheckpointCount: number
  lastBusyAt: number
  /** Calls a voter may still take (maxCallsPerSec's bucket), as of `at`. */
  readonly calls: { tokens: number, at: number }
  divergence: Divergence | undefined
  /** Durable frontiers, GC and snapshots (history-state.ts). */
  readonly history: HistoryState
  /** A partitioned group's evaluation state (partitions.ts); undefined in a group of one partition. */
  readonly parts: PartState | undefined
}

export function newEpochRecord (epoch: number, voters: readonly string[], now: number): EpochRecord {
  const streams = new Map<string, Stream>()
  for (const v of voters) streams.set(v, { have: 0, evalNext: 1, evalIndex: 0, held: new Map(), receiving: new Set(), gapAskedAt: -Infinity, gapTarget: 0 })
  return {
    epoch,
    voters,
    majority: Math.floor(voters.length / 2) + 1,
    tags: new Map(voters.map(v => [v, peerTag(v)])),
    streams,
    wm: new WatermarkTable(voters, epoch),
    coordinator: { nextSeq: 1, open: [], openBytes: 0, inflight: new Map(), outbox: [], lastPromise: undefined, lastEntry: undefined, lastDirect: -Infinity },
    acceptor: { epoch },
    proposal: undefined,
    sealedAt: -Infinity,
    nextProposeAt: -Infinity,
    changeWantedSince: undefined,
    startedAt: now,
    lastHeard: new Map(),
    wmMovedAt: new Map(),
    quiet: new Map(),
    leavers: new Map()
  }
}

export interface PeerSetup {
  readonly id: string
  readonly config: GroupConfig
  readonly registry: ProcedureRegistry
  readonly options: PeerOptions
  readonly now: number
}

export function newPeerState (setup: PeerSetup): PeerState {
  const current = newEpochRecord(setup.config.epoch, setup.config.voters, setup.now)
  return {
    id: setup.id,
    registry: setup.registry,
    options: setup.options,
    now: setup.now,
    effects: [],
    phase: 'running',
    failure: undefined,
    minter: new TimestampMinter(peerTag(setup.id)),
    config: setup.config,
    current,
    epochs: new Map([[current.epoch, current]]),
    evaluatingEpoch: current.epoch,
    srtt: 0,
    minted: new Map(),
    clockLease: 0,
    leaseWriting: false,
    promiseBlocked: false,
    lastGossip: -Infinity,
    observers: new Map(),
    flushScheduled: false,
    watermarkDirty: false,
    acceptorWrites: { writing: false, pending: undefined },
    highestBallot: 0,
    forcePropose: false,
    candidates: new Map(),
    leaving: false,
    candidate: setup.options.candidate,
    leaves: new Map(),
    revocations: { targets: new Map(), waiters: [], forwarded: new Map() },
    deferred: new Map(),
    lastEpochFetch: -Infinity,
    lastReachOut: -Infinity,
    checkingDecision: false,
    knownWatermark: TS_ZERO,
    staleToldAt: new Map(),
    detector: newDetectorState(),
    persistQueue: [],
    signing: new Map(),
    shunned: new Map(),
    tree: newTreeState(),
    writing: false,
    evaluation: 'idle',
    frontier: TS_ZERO,
    lastEvaluated: TS_ZERO,
    evaluatedCount: 0,
    hasher: new Hasher(),
    stateDigest: [0, 0],
    waiters: new Map(),
    forwards: new Map(),
    reads: new Map(),
    readIds: new Map(),
    nextReadId: 0,
    startedAt: setup.now,
    home: undefined,
    lastHello: -Infinity,
    nextDeadline: Infinity,
    confirmQueue: [],
    confirmRound: 0,
    confirming: undefined,
    counters: {},
    checkpoints: new Map(),
    lastCheckpointSent: -Infinity,
    lastCheckpointCount: -1,
    lastBusyAt: setup.now,
    calls: { tokens: setup.options.maxCallsPerSec, at: setup.now },
    divergence: undefined,
    history: newHistoryState(setup.now),
    parts: newPartState(setup.config.partitions, setup.options.partitions, setup.config.genesis?.voters ?? setup.config.voters)
  }
}

/** Whether `peer` is a voter of some epoch this peer still holds. */
export const isVoterOfKnownEpoch = (s: PeerState, peer: string): boolean => [...s.epochs.values()].some(r => r.voters.includes(peer))
export function roleOf (s: PeerState): Role {
  return s.current.voters.includes(s.id) ? 'voter' : 'observer'
}

/** Sealed: this voter promised a ballot for its epoch, so it takes no more of that epoch's writes. */
export function isSealed (s: PeerState): boolean {
  return s.current.acceptor.epoch === s.current.epoch && s.current.acceptor.promised !== undefined
}

export function statusOf (s: PeerState): Status {
  if (s.phase !== 'running') return s.phase
  if (isSealed(s)) return 'sealed'
  return roleOf(s) === 'voter' ? 'voting' : 'observing'
}

export const isInstalling = (s: PeerState): boolean => s.phase === 'installing'
