import { Hasher } from '../hash.js'
import { TS_ZERO, TimestampMinter, peerTag, type Timestamp } from '../timestamp.js'
import type { Ballot, EpochChange, EpochReport, GroupConfig, ReadResult, Role, SubmitRequest, Thunk, TxnResult, WatermarkEntry } from '../types.js'
import { keeps } from './reconfig/choose-value.js'
import { WatermarkTable } from './watermark-table.js'

/**
 * A peer's protocol state as plain data. The handlers in this folder are
 * functions of (state, environment, input); everything that belongs to one
 * epoch lives in that epoch's record, so installing an epoch builds a new
 * record instead of resetting fields.
 */

/** A peer's view of one coordinator's thunk sequence. */
export interface Stream {
  /** Every seq <= have is persisted here (evaluated or held), or aborted by the epoch's cut. */
  have: number
  /** Next seq to evaluate. */
  evalNext: number
  /** Persisted, not yet evaluated, by seq. */
  readonly held: Map<number, Thunk>
  /** Seqs handed to the writer, not persisted yet. */
  readonly receiving: Set<number>
  gapAskedAt: number
  gapTarget: number
  /** Set when the epoch ended: the last kept seq, and the aborted ones below it. */
  end?: number
  skip?: ReadonlySet<number>
}

/** A thunk this voter coordinates that is not on a majority yet. */
export interface Inflight {
  readonly thunk: Thunk
  readonly acks: Set<string>
  readonly mintedAt: number
  sentAt: number
  /** Retransmissions so far: each one waits twice as long as the last. */
  tries: number
}

/** What this voter coordinates in an epoch. */
export interface CoordinatorState {
  nextSeq: number
  /** By seq, in mint order. */
  readonly inflight: Map<number, Inflight>
  /** Persisted here, not yet sent to the others (sent at the end of the turn). */
  outbox: Thunk[]
  lastPromise: WatermarkEntry | undefined
  /** The last entry this voter published; frozen while sealed. */
  lastEntry: WatermarkEntry | undefined
}

/** An acceptor's durable Paxos state for its epoch. */
export interface AcceptorState {
  readonly epoch: number
  readonly promised?: Ballot
  readonly accepted?: { readonly ballot: Ballot, readonly value: EpochChange }
}

export interface Proposal {
  readonly epoch: number
  readonly ballot: Ballot
  readonly startedAt: number
  readonly promises: Map<string, { accepted?: { ballot: Ballot, value: EpochChange } | undefined, report: EpochReport }>
  readonly accepts: Set<string>
  value?: EpochChange
}

/**
 * One epoch: its voters, sequences and watermark, and (while it is the
 * current one) what this peer coordinates and agrees in it. Old epochs stay
 * until evaluated through their cut.
 */
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
}

export type Waiter =
  | { readonly kind: 'local', readonly resolve: (r: TxnResult) => void, readonly reject: (e: Error) => void, readonly deadline: number }
  | { readonly kind: 'remote', readonly to: string }

/** A submission an observer forwarded to a voter. */
export interface Forward {
  readonly req: SubmitRequest
  sentAt: number
  /** The voter it was last sent to. */
  to: string
}

export interface PendingRead {
  readonly ts: Timestamp
  readonly keys: readonly string[]
  readonly resolve: (r: ReadResult) => void
}

/** An observer's request for a strict-read timestamp. */
export interface TsRequest {
  readonly resolve: (ts: Timestamp) => void
  sentAt: number
  /** The voter it was last sent to. */
  to: string
}

/** One round of read confirmation (see confirm.ts). */
export interface ConfirmRound {
  readonly round: number
  readonly epoch: number
  readonly oks: Set<string>
  readonly waiters: Array<(ok: boolean) => void>
  sentAt: number
}

/** Two replicas disagree on the result digest after the same number of evaluated thunks. */
export interface Divergence {
  readonly peer: string
  readonly count: number
  readonly mine: string
  readonly theirs: string
}

export interface PeerState {
  readonly id: string
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
  lastGossip: number
  /** Observers → when last heard (a voter fans writes and watermarks out to them). */
  readonly observers: Map<string, number>
  flushScheduled: boolean
  watermarkDirty: boolean

  // reconfiguration, across epochs
  acceptorWrites: Promise<void>
  highestBallot: number
  forcePropose: boolean
  /** Candidates (peers asking to be voters) → when last heard, and at which epoch. */
  readonly candidates: Map<string, { seen: number, epoch: number }>
  leaving: boolean
  /** Submissions received while sealed: minted once the next epoch is installed. */
  readonly deferred: Map<string, SubmitRequest>
  installing: boolean
  lastEpochFetch: number
  readonly staleToldAt: Map<string, number>

  // replica
  persistQueue: Thunk[]
  writing: boolean
  evaluating: boolean
  /** All thunks below this are evaluated and settled here. */
  frontier: Timestamp
  lastEvaluated: Timestamp
  evaluatedCount: number
  /** Rolling digest over every evaluated thunk, fed in timestamp order. */
  hasher: Hasher

  // requests
  readonly waiters: Map<string, Waiter[]>
  readonly forwards: Map<string, Forward>
  pendingReads: PendingRead[]
  readonly tsRequests: Map<string, TsRequest>
  requestCounter: number
  /** See homeVoter. */
  home: string | undefined
  lastHello: number
  /** Checks run by every tick until released: each rejects its operation on abort, deadline or close. */
  readonly guards: Set<() => boolean>
  /** Earliest deadline of a local waiter (a lower bound; Infinity when none). */
  nextDeadline: number
  confirmQueue: Array<(ok: boolean) => void>
  confirmRound: number
  confirming: ConfirmRound | undefined

  // lifecycle and divergence
  closed: boolean
  failure: string | undefined
  readonly counters: Record<string, number>
  /** count → digest after that many evaluated thunks (the last CHECKPOINTS_KEPT). */
  readonly checkpoints: Map<number, string>
  lastCheckpointSent: number
  divergence: Divergence | undefined
}

export function newEpochRecord (epoch: number, voters: readonly string[], now: number): EpochRecord {
  const streams = new Map<string, Stream>()
  for (const v of voters) streams.set(v, { have: 0, evalNext: 1, held: new Map(), receiving: new Set(), gapAskedAt: -Infinity, gapTarget: 0 })
  return {
    epoch,
    voters,
    majority: Math.floor(voters.length / 2) + 1,
    tags: new Map(voters.map(v => [v, peerTag(v)])),
    streams,
    wm: new WatermarkTable(voters, epoch),
    coordinator: { nextSeq: 1, inflight: new Map(), outbox: [], lastPromise: undefined, lastEntry: undefined },
    acceptor: { epoch },
    proposal: undefined,
    sealedAt: -Infinity,
    nextProposeAt: -Infinity,
    changeWantedSince: undefined,
    startedAt: now,
    lastHeard: new Map(),
    wmMovedAt: new Map()
  }
}

export function newPeerState (id: string, config: GroupConfig, now: number): PeerState {
  const current = newEpochRecord(config.epoch, config.voters, now)
  return {
    id,
    minter: new TimestampMinter(peerTag(id)),
    config,
    current,
    epochs: new Map([[current.epoch, current]]),
    evaluatingEpoch: current.epoch,
    srtt: 0,
    minted: new Map(),
    clockLease: 0,
    leaseWriting: false,
    lastGossip: -Infinity,
    observers: new Map(),
    flushScheduled: false,
    watermarkDirty: false,
    acceptorWrites: Promise.resolve(),
    highestBallot: 0,
    forcePropose: false,
    candidates: new Map(),
    leaving: false,
    deferred: new Map(),
    installing: false,
    lastEpochFetch: -Infinity,
    staleToldAt: new Map(),
    persistQueue: [],
    writing: false,
    evaluating: false,
    frontier: TS_ZERO,
    lastEvaluated: TS_ZERO,
    evaluatedCount: 0,
    hasher: new Hasher(),
    waiters: new Map(),
    forwards: new Map(),
    pendingReads: [],
    tsRequests: new Map(),
    requestCounter: 0,
    home: undefined,
    lastHello: -Infinity,
    guards: new Set(),
    nextDeadline: Infinity,
    confirmQueue: [],
    confirmRound: 0,
    confirming: undefined,
    closed: false,
    failure: undefined,
    counters: {},
    checkpoints: new Map(),
    lastCheckpointSent: -Infinity,
    divergence: undefined
  }
}

/** Skipped (aborted) seqs count as had: there is nothing to fetch for them. */
export function advanceHave (stream: Stream): void {
  while (stream.held.has(stream.have + 1) || stream.skip?.has(stream.have + 1) === true) stream.have++
}

/** Whether the epoch's decided cut aborted (or never had) `seq` of this stream. */
export function cutOff (record: EpochRecord, stream: Stream, seq: number): boolean {
  return record.floor !== undefined && (seq > (stream.end ?? 0) || stream.skip?.has(seq) === true)
}

/** Marks where each of the old epoch's sequences ends (from the decided change) and drops held thunks it aborted. */
export function applyCut (record: EpochRecord, change: EpochChange): void {
  record.floor = change.floor
  for (const [coordinator, stream] of record.streams) {
    const cut = change.cuts.find(x => x.coordinator === coordinator)
    stream.end = cut?.end ?? 0
    stream.skip = new Set(cut?.skip ?? [])
    for (const seq of stream.held.keys()) if (!keeps(cut, seq)) stream.held.delete(seq)
    advanceHave(stream)
  }
}

export function roleOf (s: PeerState): Role {
  return s.current.voters.includes(s.id) ? 'voter' : 'observer'
}

/** Sealed: this voter promised a ballot for its epoch, so it takes no more of that epoch's writes. */
export function isSealed (s: PeerState): boolean {
  return s.current.acceptor.epoch === s.current.epoch && s.current.acceptor.promised !== undefined
}

export function isVoterOfKnownEpoch (s: PeerState, peer: string): boolean {
  for (const record of s.epochs.values()) if (record.voters.includes(peer)) return true
  return false
}

export function count (s: PeerState, name: string, n = 1): void {
  s.counters[name] = (s.counters[name] ?? 0) + n
}
