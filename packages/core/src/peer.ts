import * as C from './constants.js'
import { AbortError, PeerClosedError, QuorumUnavailableError, StoreFailedError, errorFromInfo } from './errors.js'
import { Hasher, hash64 } from './hash.js'
import type { Message } from './messages.js'
import { declaredKeys, resolveProcedure, type ProcedureRegistry } from './procedures.js'
import { storeApplier, type Cursor, type RunApplier } from './apply.js'
import type { Store, StoreSnapshot } from './store.js'
import { TS_ZERO, TimestampMinter, maxTimestamp, peerTag, timestampMs, type Timestamp } from './timestamp.js'
import type { Ballot, EpochChange, EpochReport, GroupConfig, ReadConsistency, ReadResult, Role, SubmitRequest, Thunk, TxnResult, WatermarkEntry } from './types.js'
import { chooseValue, compareBallots, keeps } from './reconfig.js'
import { validateMessage } from './validate.js'
import { checkValue, type Value } from './value.js'
import { WatermarkTable } from './watermark.js'

/** The injected clock: milliseconds, possibly skewed, possibly stepping back. */
export interface Clock {
  now(): number
}

/** An injected structured logger (`debug`-style namespace is the host's choice). */
export type Logger = (event: string, detail?: Record<string, unknown>) => void

export interface PeerInit {
  readonly id: string
  readonly config: GroupConfig
  readonly registry: ProcedureRegistry
  readonly store: Store
  readonly clock: Clock
  /** Hands a message to the transport; delivery may fail silently. */
  readonly send: (to: string, message: Message) => void
  /** @default no logging */
  readonly logger?: Logger
  /** @default DEFAULT_WRITE_RETRY_MS */
  readonly writeRetryMs?: number
  /** @default DEFAULT_GOSSIP_INTERVAL_MS */
  readonly gossipIntervalMs?: number
  /** @default DEFAULT_GAP_RETRY_MS */
  readonly gapRetryMs?: number
  /** @default DEFAULT_CALL_TIMEOUT_MS */
  readonly callTimeoutMs?: number
  /** @default DEFAULT_MAX_SKEW_MS */
  readonly maxSkewMs?: number
  /** @default DEFAULT_CLOCK_LEASE_MS */
  readonly clockLeaseMs?: number
  /** @default DEFAULT_MAX_VALUE_BYTES */
  readonly maxValueBytes?: number
  /**
   * Evaluates and settles runs of thunks. @default in-process against `store`
   * (a browser database passes one that runs in its Web Worker).
   */
  readonly applier?: RunApplier
  /** @default DEFAULT_SUSPECT_MS */
  readonly suspectMs?: number
  /** @default DEFAULT_PROPOSE_TIMEOUT_MS */
  readonly proposeTimeoutMs?: number
  /** @default DEFAULT_MAX_VOTERS */
  readonly maxVoters?: number
  /** While not a voter, ask the voters to add this peer (relays do; tabs normally do not). @default false */
  readonly candidate?: boolean
  /**
   * Which candidates a voter may add to the next epoch (they are already
   * authenticated group members; this is the policy on top).
   * @default none
   */
  readonly admitVoter?: (peerId: string) => boolean
}

/** A decided epoch change as this peer installed it. */
export interface EpochEvent {
  readonly epoch: number
  readonly voters: readonly string[]
  /** Old-epoch thunks aborted by the change (their clients retry with the same clientTxnId). */
  readonly aborted: number
}

/** What one evaluated run changed: the keys it wrote and the frontier after it. */
export interface AppliedEvent {
  readonly written: readonly string[]
  readonly frontier: Timestamp
}

export interface CallOptions {
  readonly signal?: AbortSignal
  /** @default the peer's callTimeoutMs */
  readonly timeoutMs?: number
}

export interface ReadOptions extends CallOptions {
  /** @default 'strict' */
  readonly consistency?: ReadConsistency
}

/** A snapshot of a peer's protocol state, for status displays and tests. */
export interface PeerStatus {
  readonly id: string
  readonly role: Role
  readonly epoch: number
  readonly voters: readonly string[]
  /** This voter promised a ballot for its epoch and takes none of its writes until the change is decided. */
  readonly sealed: boolean
  readonly watermark: Timestamp
  /** All thunks below this are evaluated and settled here. */
  readonly frontier: Timestamp
  readonly lastEvaluated: Timestamp
  readonly evaluated: number
  readonly digest: string
  readonly inflight: number
  readonly unevaluated: number
  readonly failed: string | undefined
  /** Set once another replica reported a different digest at a count this one also evaluated. */
  readonly diverged: Divergence | undefined
  readonly counters: Readonly<Record<string, number>>
}

/** Two replicas disagree on the result digest after the same number of evaluated thunks. */
export interface Divergence {
  readonly peer: string
  readonly count: number
  readonly mine: string
  readonly theirs: string
}

/** A peer's view of one coordinator's thunk sequence. */
interface Stream {
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

/** One epoch's voters, sequences and watermark. Old epochs stay until evaluated through their cut. */
interface EpochState {
  readonly epoch: number
  readonly voters: readonly string[]
  readonly majority: number
  readonly tags: ReadonlyMap<string, string>
  readonly streams: ReadonlyMap<string, Stream>
  readonly wm: WatermarkTable
  /** Set when the next epoch is decided: every kept thunk of this epoch lies at or below it, every later one above. */
  floor?: Timestamp
}

/** An acceptor's durable Paxos state for its current epoch. */
interface AcceptorState {
  readonly epoch: number
  readonly promised?: Ballot
  readonly accepted?: { readonly ballot: Ballot, readonly value: EpochChange }
}

interface Proposal {
  readonly epoch: number
  readonly ballot: Ballot
  readonly startedAt: number
  readonly promises: Map<string, { accepted?: { ballot: Ballot, value: EpochChange } | undefined, report: EpochReport }>
  readonly accepts: Set<string>
  value?: EpochChange
}

function newEpochState (epoch: number, voters: readonly string[]): EpochState {
  const streams = new Map<string, Stream>()
  for (const v of voters) streams.set(v, { have: 0, evalNext: 1, held: new Map(), receiving: new Set(), gapAskedAt: -Infinity, gapTarget: 0 })
  return { epoch, voters, majority: Math.floor(voters.length / 2) + 1, tags: new Map(voters.map(v => [v, peerTag(v)])), streams, wm: new WatermarkTable(voters, epoch) }
}

/** Skipped (aborted) seqs count as had: there is nothing to fetch for them. */
function advanceHave (s: Stream): void {
  while (s.held.has(s.have + 1) || s.skip?.has(s.have + 1) === true) s.have++
}

const sameBallot = (a: Ballot, b: Ballot): boolean => a.n === b.n && a.by === b.by
interface Inflight {
  readonly thunk: Thunk
  readonly acks: Set<string>
  readonly mintedAt: number
  sentAt: number
  /** Retransmissions so far: each one waits twice as long as the last. */
  tries: number
}

type Waiter =
  | { readonly kind: 'local', readonly resolve: (r: TxnResult) => void, readonly reject: (e: Error) => void, readonly deadline: number }
  | { readonly kind: 'remote', readonly to: string }

interface Forward {
  readonly req: SubmitRequest
  sentAt: number
  /** The voter it was last sent to. */
  to: string
}

interface PendingRead {
  readonly ts: Timestamp
  readonly keys: readonly string[]
  readonly resolve: (r: ReadResult) => void
}

interface TsRequest {
  readonly resolve: (ts: Timestamp) => void
  sentAt: number
  /** The voter it was last sent to. */
  to: string
}

/** A submission that passed its checks: the procedure's canonical name and hash, and its declared keys. */
interface Checked { readonly procedure: string, readonly hash: string, readonly reads: readonly string[], readonly writes: readonly string[] }

function errorInfo (err: unknown): { name: string, message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message }
  return { name: 'Error', message: String(err) }
}

/** Rebuilds a named error on the receiving side of a message. */
/**
 * One member of a Tideline group. Every peer runs the same code: a voter also
 * coordinates (mints timestamps, quorum-writes thunks, publishes a watermark
 * entry); every peer replicates, evaluates in timestamp order and serves
 * reads. The peer is pure protocol: time, network and storage are injected,
 * and it does nothing between calls except finish its own store writes.
 */
export class Peer {
  readonly id: string
  private readonly registry: ProcedureRegistry
  private readonly store: Store
  private readonly applier: RunApplier
  private readonly appliedListeners = new Set<(e: AppliedEvent) => void>()
  private readonly epochListeners = new Set<(e: EpochEvent) => void>()
  private readonly clock: Clock
  private readonly sendFn: PeerInit['send']
  private readonly log: Logger
  private readonly opts: {
    writeRetryMs: number, gossipIntervalMs: number, gapRetryMs: number, callTimeoutMs: number
    maxSkewMs: number, clockLeaseMs: number, maxValueBytes: number
    suspectMs: number, proposeTimeoutMs: number, maxVoters: number
    candidate: boolean, admitVoter: (peerId: string) => boolean
  }

  private readonly minter: TimestampMinter
  private cfg: GroupConfig
  /** The current epoch (the newest this peer installed). */
  private cur: EpochState
  /** Epochs from the one being evaluated up to the current one. */
  private readonly epochs = new Map<number, EpochState>()
  private evalEpoch: number

  // coordinator state
  private nextSeq = 1
  /** Smoothed time from mint to majority, so retransmission backs off when the group is slow rather than flood it. */
  private srtt = 0
  private readonly inflight = new Map<number, Inflight>()
  /** clientTxnIds this peer minted a thunk for that is not evaluated yet. */
  private readonly minted = new Map<string, Timestamp>()
  private outbox: Thunk[] = []
  private lastPromise: WatermarkEntry | undefined
  /** The last entry this voter published; frozen while sealed. */
  private lastEntry: WatermarkEntry | undefined
  private clockLease = 0
  private leaseWriting = false
  private lastGossip = -Infinity
  private readonly observers = new Map<string, number>()

  // reconfiguration state
  private acceptor: AcceptorState
  private acceptorWrites: Promise<void> = Promise.resolve()
  private sealedAt = -Infinity
  private proposal: Proposal | undefined
  private highestBallot = 0
  private nextProposeAt = -Infinity
  /** Since when this voter has wanted a different voter set (or been sealed too long). */
  private changeWantedSince: number | undefined
  private epochStartedAt: number
  private readonly lastHeard = new Map<string, number>()
  private readonly wmMovedAt = new Map<string, number>()
  /** Candidates (peers asking to be voters) → when last heard, and at which epoch. */
  private readonly candidates = new Map<string, { seen: number, epoch: number }>()
  private leaving = false
  /** Submissions received while sealed: minted once the next epoch is installed. */
  private readonly deferred = new Map<string, SubmitRequest>()
  private installing = false
  private lastEpochFetch = -Infinity
  private readonly staleToldAt = new Map<string, number>()

  // replica state
  private persistQueue: Thunk[] = []
  private writing = false
  private evaluating = false
  private frontier: Timestamp = TS_ZERO
  private lastEvaluated: Timestamp = TS_ZERO
  private evaluatedCount = 0
  /** Rolling digest over every evaluated thunk, fed in timestamp order. */
  private hasher = new Hasher()
  private readonly waiters = new Map<string, Waiter[]>()
  private readonly forwards = new Map<string, Forward>()
  private pendingReads: PendingRead[] = []
  private readonly tsRequests = new Map<string, TsRequest>()
  private reqCounter = 0
  /** See homeVoter. */
  private home: string | undefined
  private lastHello = -Infinity
  private flushScheduled = false
  private wmDirty = false
  private closed = false
  private failure: string | undefined
  private readonly counters: Record<string, number> = {}
  /** count → digest after that many evaluated thunks (the last CHECKPOINTS_KEPT). */
  private readonly checkpoints = new Map<number, string>()
  private lastCheckpointSent = -Infinity
  private divergence: Divergence | undefined

  private constructor (init: PeerInit) {
    this.id = init.id
    this.cfg = init.config
    this.registry = init.registry
    this.store = init.store
    this.applier = init.applier ?? storeApplier({ store: init.store, registry: init.registry, maxValueBytes: init.maxValueBytes ?? C.DEFAULT_MAX_VALUE_BYTES })
    this.clock = init.clock
    this.sendFn = init.send
    this.log = init.logger ?? (() => {})
    this.opts = {
      writeRetryMs: init.writeRetryMs ?? C.DEFAULT_WRITE_RETRY_MS,
      gossipIntervalMs: init.gossipIntervalMs ?? C.DEFAULT_GOSSIP_INTERVAL_MS,
      gapRetryMs: init.gapRetryMs ?? C.DEFAULT_GAP_RETRY_MS,
      callTimeoutMs: init.callTimeoutMs ?? C.DEFAULT_CALL_TIMEOUT_MS,
      maxSkewMs: init.maxSkewMs ?? C.DEFAULT_MAX_SKEW_MS,
      clockLeaseMs: init.clockLeaseMs ?? C.DEFAULT_CLOCK_LEASE_MS,
      maxValueBytes: init.maxValueBytes ?? C.DEFAULT_MAX_VALUE_BYTES,
      suspectMs: init.suspectMs ?? C.DEFAULT_SUSPECT_MS,
      proposeTimeoutMs: init.proposeTimeoutMs ?? C.DEFAULT_PROPOSE_TIMEOUT_MS,
      maxVoters: init.maxVoters ?? C.DEFAULT_MAX_VOTERS,
      candidate: init.candidate ?? false,
      admitVoter: init.admitVoter ?? (() => false)
    }
    this.minter = new TimestampMinter(peerTag(init.id))
    this.cur = newEpochState(init.config.epoch, init.config.voters)
    this.epochs.set(this.cur.epoch, this.cur)
    this.evalEpoch = this.cur.epoch
    this.acceptor = { epoch: this.cur.epoch }
    this.epochStartedAt = init.clock.now()
  }

  /** The current epoch's configuration (it changes when an epoch change is installed). */
  get config (): GroupConfig {
    return this.cfg
  }

  get role (): Role {
    return this.cur.voters.includes(this.id) ? 'voter' : 'observer'
  }

  /** Sealed: this voter promised a ballot for its epoch, so it takes no more of that epoch's writes. */
  private get sealed (): boolean {
    return this.acceptor.epoch === this.cur.epoch && this.acceptor.promised !== undefined
  }

  /**
   * Opens a peer on a store, recovering whatever the store persisted: the
   * installed epochs, the evaluation cursor, unevaluated thunks, its Paxos
   * promises, and (for a voter) its own sequence and clock floor, so it never
   * reuses a sequence number or a promise.
   */
  static async open (init: PeerInit): Promise<Peer> {
    const peer = new Peer(init)
    await peer.recover(init.config)
    return peer
  }

  private async recover (initial: GroupConfig): Promise<void> {
    const cursor = await this.store.getMeta('cursor') as Cursor | undefined
    const stored = await this.store.getMeta('config') as GroupConfig | undefined
    const target = stored !== undefined && stored.groupId === initial.groupId && stored.epoch > initial.epoch ? stored.epoch : initial.epoch
    // Rebuild the epochs from the one the cursor is in up to the newest installed, applying each decided cut.
    const startEpoch = cursor?.epoch !== undefined && cursor.epoch >= initial.epoch ? cursor.epoch : initial.epoch
    let voters = initial.voters
    if (startEpoch !== initial.epoch) {
      const d = await this.store.getMeta(`decision:${startEpoch}`) as EpochChange | undefined
      if (d !== undefined) voters = d.voters
    }
    this.epochs.clear()
    let es = newEpochState(startEpoch, voters)
    this.epochs.set(startEpoch, es)
    let lastFloor: Timestamp | undefined
    for (let e = startEpoch + 1; e <= target; e++) {
      const d = await this.store.getMeta(`decision:${e}`) as EpochChange | undefined
      if (d === undefined) break
      this.applyCut(es, d)
      lastFloor = d.floor
      es = newEpochState(e, d.voters)
      this.epochs.set(e, es)
    }
    this.cur = es
    this.cfg = { ...initial, epoch: es.epoch, voters: es.voters }
    this.evalEpoch = startEpoch
    if (lastFloor !== undefined) this.minter.floor(lastFloor)
    const acceptor = await this.store.getMeta('paxos') as AcceptorState | undefined
    if (acceptor !== undefined && acceptor.epoch === this.cur.epoch) {
      this.acceptor = acceptor
      if (acceptor.promised !== undefined) this.highestBallot = acceptor.promised.n
      if (this.sealed) this.sealedAt = this.now()
    } else {
      this.acceptor = { epoch: this.cur.epoch }
    }
    const first = this.epochs.get(this.evalEpoch) as EpochState
    if (cursor !== undefined) {
      this.frontier = cursor.frontier
      this.lastEvaluated = cursor.last
      this.evaluatedCount = cursor.count
      this.hasher = Hasher.restore(cursor.digest)
      if (cursor.epoch === undefined || cursor.epoch === first.epoch) {
        for (const [c, n] of Object.entries(cursor.evalNext)) {
          const s = first.streams.get(c)
          if (s !== undefined) { s.evalNext = n; s.have = n - 1 }
        }
      }
    }
    const lease = await this.store.getMeta('clockLease')
    if (typeof lease === 'number') {
      this.clockLease = lease
      this.minter.floorMs(lease)
    }
    for (const t of await this.store.unsettled()) {
      const ep = this.epochs.get(t.epoch)
      const s = ep?.streams.get(t.coordinator)
      if (ep === undefined || s === undefined || t.seq < s.evalNext) continue
      if (ep.floor !== undefined && (t.seq > (s.end ?? 0) || s.skip?.has(t.seq) === true)) continue
      s.held.set(t.seq, t)
      if (t.coordinator === this.id) this.minter.floor(t.ts)
      if (t.coordinator === this.id && ep === this.cur) {
        this.nextSeq = Math.max(this.nextSeq, t.seq + 1)
        this.minted.set(t.clientTxnId, t.ts)
        // Not known to be on a majority any more: send it again until acked.
        this.inflight.set(t.seq, { thunk: t, acks: new Set([this.id]), mintedAt: this.now(), sentAt: -Infinity, tries: 0 })
      }
    }
    for (const ep of this.epochs.values()) for (const s of ep.streams.values()) advanceHave(s)
    const self = this.cur.streams.get(this.id)
    if (self !== undefined) this.nextSeq = Math.max(this.nextSeq, self.have + 1, self.evalNext)
    this.epochStartedAt = this.now()
    this.log('recovered', { epoch: this.cur.epoch, evalEpoch: this.evalEpoch, frontier: this.frontier, evaluated: this.evaluatedCount, nextSeq: this.nextSeq })
    this.kickEvaluator()
  }

  /** Marks where each of the old epoch's sequences ends (from the decided change) and drops held thunks it aborted. */
  private applyCut (es: EpochState, d: EpochChange): void {
    es.floor = d.floor
    for (const [c, s] of es.streams) {
      const cut = d.cuts.find(x => x.coordinator === c)
      s.end = cut?.end ?? 0
      s.skip = new Set(cut?.skip ?? [])
      for (const seq of s.held.keys()) if (!keeps(cut, seq)) s.held.delete(seq)
      advanceHave(s)
    }
  }

  private count (name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n
  }

  private send (to: string, message: Message): void {
    if (this.closed || to === this.id) return
    this.sendFn(to, message)
  }

  private now (): number {
    return this.clock.now()
  }

  // ---------------------------------------------------------------- inputs

  /**
   * Handles a message from a peer. Malformed or out-of-role input is dropped
   * and counted; nothing a peer sends can throw out of here.
   */
  receive (from: string, raw: unknown): void {
    if (this.closed) return
    let m: Message
    try {
      m = validateMessage(raw, { maxValueBytes: this.opts.maxValueBytes })
    } catch (err) {
      this.count('invalid')
      this.log('invalid-message', { from, error: (err as Error).message })
      return
    }
    try {
      this.dispatch(from, m)
    } catch (err) {
      this.count('handler-error')
      this.log('handler-error', { from, type: m.t, error: errorInfo(err).message })
    }
  }

  private dispatch (from: string, m: Message): void {
    if (this.cur.voters.includes(from)) this.lastHeard.set(from, this.now())
    switch (m.t) {
      case 'write':
        // Only voters coordinate: thunks from anyone else are refused, not stored.
        if (!this.isVoterOfKnownEpoch(from) && !m.thunks.some(t => t.epoch > this.cur.epoch)) {
          this.count('write-from-non-voter')
          // A voter voted out in an epoch it has not heard of: tell it.
          const stale = m.thunks.find(t => t.epoch < this.cur.epoch)
          if (stale !== undefined) this.tellStale(from, stale.epoch)
          break
        }
        this.mergeWatermark(from, m.wm)
        for (const t of m.thunks) {
          const es = this.epochs.get(t.epoch)
          // A voter of the thunk's epoch coordinates it, and only its own.
          if (es !== undefined && !es.voters.includes(from)) this.count('write-from-non-voter')
          else if (t.coordinator !== from) this.count('write-not-own-refused')
          else if (t.epoch < this.evalEpoch || (es !== undefined && es.floor !== undefined)) this.tellStale(from, t.epoch)
          else this.acceptThunk(t, from)
        }
        break
      case 'gap-rep':
        for (const t of m.thunks) {
          // Gaps are asked of voters only, so only a voter's answer is taken.
          const es = this.epochs.get(t.epoch)
          if (es === undefined || (!es.voters.includes(from) && !this.cur.voters.includes(from))) this.count('gap-from-non-voter')
          else this.acceptThunk(t, from)
        }
        break
      case 'ack':
        this.mergeWatermark(from, m.wm)
        this.onAck(from, m.epoch, m.seqs)
        break
      case 'wm':
        this.mergeWatermark(from, m.wm)
        break
      case 'gap-req':
        void this.serveGap(from, m.coordinator, m.epoch, m.from, m.to)
        break
      case 'submit':
        this.handleSubmit(m.req, { kind: 'remote', to: m.replyTo })
        break
      case 'submit-rep':
        if (m.result !== undefined) this.resolveWaiters(m.clientTxnId, m.result)
        else if (m.error !== undefined && m.error.name !== 'QuorumUnavailableError') this.rejectWaiters(m.clientTxnId, errorFromInfo(m.error))
        break
      case 'read':
        void this.serveRead(m.keys, m.consistency).then(
          result => { this.send(m.replyTo, { t: 'read-rep', reqId: m.reqId, result }) },
          err => { this.send(m.replyTo, { t: 'read-rep', reqId: m.reqId, error: errorInfo(err) }) })
        break
      case 'ts-req':
        if (this.role === 'voter') {
          this.confirmedTimestamp({}).then(ts => { this.send(from, { t: 'ts-rep', reqId: m.reqId, ts }) }, () => {})
        }
        break
      case 'confirm':
        // Only while this epoch is current here and no ballot sealed it: a read timestamp minted before this answer is then not stale.
        if (this.role === 'voter' && m.epoch === this.cur.epoch && !this.sealed && !this.installing && this.cur.voters.includes(from)) {
          this.send(from, { t: 'confirmed', epoch: m.epoch, round: m.round })
        }
        break
      case 'confirmed':
        this.onConfirmed(from, m.epoch, m.round)
        break
      case 'ts-rep': {
        const r = this.tsRequests.get(m.reqId)
        if (r !== undefined && this.cur.voters.includes(from)) {
          this.tsRequests.delete(m.reqId)
          r.resolve(m.ts)
        }
        break
      }
      case 'ck':
        this.compareCheckpoint(from, m.count, m.digest)
        break
      case 'hello':
        if (m.epoch !== undefined && m.epoch < this.cur.epoch) this.tellStale(from, m.epoch)
        if (this.role === 'voter' && !this.cur.voters.includes(from)) {
          this.observers.set(from, this.now())
          if (m.candidate === true && m.epoch !== undefined) this.candidates.set(from, { seen: this.now(), epoch: m.epoch })
          else this.candidates.delete(from)
        }
        break
      case 'rc-prepare':
        this.onPrepare(from, m.epoch, m.ballot)
        break
      case 'rc-accept':
        this.onAccept(from, m.epoch, m.ballot, m.value)
        break
      case 'rc-promise':
        this.onPromise(from, m.epoch, m.ballot, m.accepted, m.report)
        break
      case 'rc-accepted':
        this.onAccepted(from, m.epoch, m.ballot)
        break
      case 'rc-nack':
        this.onNack(m.epoch, m.ballot)
        break
      case 'rc-decided':
        this.onDecided(from, m.value)
        break
      case 'rc-fetch':
        if (m.epoch < this.cur.epoch) this.tellStale(from, m.epoch, true)
        break
      case 'read-rep':
        break
    }
  }

  private isVoterOfKnownEpoch (peer: string): boolean {
    for (const es of this.epochs.values()) if (es.voters.includes(peer)) return true
    return false
  }

  /** Timers: retransmission, gossip, gap fill, lease renewal, failure detection, timeouts. The host calls it every few ms. */
  tick (): void {
    if (this.closed) return
    const now = this.now()
    if (this.role === 'voter') {
      this.retransmit(now)
      this.renewLease()
      if (now - this.lastGossip >= this.opts.gossipIntervalMs) this.publish()
      for (const [id, seen] of this.observers) if (now - seen > C.DEFAULT_OBSERVER_TTL_MS) this.observers.delete(id)
      for (const [id, c] of this.candidates) if (now - c.seen > C.DEFAULT_OBSERVER_TTL_MS) this.candidates.delete(id)
      if (this.failure === undefined) this.detectFailures(now)
    } else if (now - this.lastHello >= C.DEFAULT_HELLO_INTERVAL_MS) {
      this.lastHello = now
      const hello: Message = { t: 'hello', epoch: this.cur.epoch, candidate: this.opts.candidate && !this.leaving }
      for (const v of this.cur.voters) this.send(v, hello)
    }
    if (now - this.lastCheckpointSent >= C.DEFAULT_CHECKPOINT_INTERVAL_MS) this.sendCheckpoint(now)
    this.askForGaps(now)
    this.retryForwards(now)
    if (this.confirming !== undefined && now - this.confirming.sentAt >= this.opts.writeRetryMs) this.sendConfirm(this.confirming)
    this.expireWaiters(now)
  }

  // --------------------------------------------------------- divergence

  /** Tells the voters (and a voter its observers) the latest digest checkpoint. */
  private sendCheckpoint (now: number): void {
    this.lastCheckpointSent = now
    let latest = -1
    for (const c of this.checkpoints.keys()) if (c > latest) latest = c
    const digest = this.checkpoints.get(latest)
    if (digest === undefined) return
    const m: Message = { t: 'ck', count: latest, digest }
    for (const v of this.cur.voters) this.send(v, m)
    if (this.role === 'voter') for (const o of this.observers.keys()) this.send(o, m)
  }

  private compareCheckpoint (from: string, count: number, theirs: string): void {
    const mine = this.checkpoints.get(count)
    if (mine === undefined || mine === theirs) return
    this.count('digest-mismatch')
    if (this.divergence !== undefined) return
    this.divergence = { peer: from, count, mine, theirs }
    this.log('diverged', { ...this.divergence })
    for (const l of this.divergenceListeners) l(this.divergence)
  }

  private readonly divergenceListeners = new Set<(d: Divergence) => void>()

  /** Calls `listener` once this replica learns another one reached a different digest (a non-deterministic procedure, or a bug). */
  onDivergence (listener: (d: Divergence) => void): () => void {
    this.divergenceListeners.add(listener)
    return () => { this.divergenceListeners.delete(listener) }
  }

  // ---------------------------------------------------------- watermark

  /**
   * Merges watermark entries `from` sent. A peer speaks only for itself: only
   * a voter's own entry is taken (the transport authenticates `from`), so no
   * member can raise another voter's promise; entries reach everyone because
   * every voter sends its own to every peer.
   */
  private mergeWatermark (from: string, entries: readonly WatermarkEntry[]): void {
    let raised = false
    for (const e of entries) {
      if (e.voter === this.id) continue
      if (e.voter !== from) {
        this.count('wm-not-own-refused')
        continue
      }
      if (e.epoch > this.cur.epoch) {
        this.noticeEpoch(from)
        continue
      }
      if (e.epoch < this.cur.epoch) {
        this.tellStale(from, e.epoch)
        continue
      }
      this.observeTimestamp(e.svw)
      if (this.cur.wm.merge(e)) {
        raised = true
        this.wmMovedAt.set(from, this.now())
      }
    }
    if (raised) this.kickEvaluator()
  }

  /** Hybrid clock: never promise below what peers already reached, within the skew bound. */
  private observeTimestamp (ts: Timestamp): void {
    if (this.role !== 'voter') return
    if (timestampMs(ts) - this.now() <= this.opts.maxSkewMs) this.minter.floor(ts)
    else this.count('clock-skew-refused')
  }

  /**
   * This voter's entry: the lowest timestamp still in flight, or a fresh
   * timestamp that it promises never to go below; and how many of its thunks
   * lie below that point.
   */
  private ownEntry (): WatermarkEntry | undefined {
    if (this.role !== 'voter') return undefined
    // Sealed: the epoch's history is being cut; promising more could let V pass the new epoch's floor.
    if (this.sealed) return this.lastEntry
    this.lastEntry = this.freshEntry()
    return this.lastEntry
  }

  private freshEntry (): WatermarkEntry | undefined {
    const first = this.inflight.values().next()
    if (!first.done) {
      const t = first.value.thunk
      return { voter: this.id, epoch: this.cur.epoch, svw: t.ts, count: t.seq - 1 }
    }
    const svw = this.minter.mint(this.now())
    // A promise must survive a crash: only promise within the persisted clock lease.
    if (timestampMs(svw) >= this.clockLease) {
      this.renewLease()
      return this.lastPromise
    }
    this.lastPromise = { voter: this.id, epoch: this.cur.epoch, svw, count: this.nextSeq - 1 }
    return this.lastPromise
  }

  private renewLease (): void {
    if (this.leaseWriting || this.minter.lastMillis + this.opts.clockLeaseMs / 2 < this.clockLease) return
    this.leaseWriting = true
    const lease = Math.max(this.now(), this.minter.lastMillis) + this.opts.clockLeaseMs
    this.store.write({ meta: [['clockLease', lease]], durability: 'strict' }).then(() => {
      this.leaseWriting = false
      this.clockLease = Math.max(this.clockLease, lease)
      this.publish()
    }, err => { this.fail(err) })
  }

  /** What this peer says about the watermark: its own entry only (peers take no one's entry second-hand). */
  private watermarkEntries (): WatermarkEntry[] {
    const own = this.ownEntry()
    if (own === undefined) return []
    this.cur.wm.merge(own)
    return [own]
  }

  /** Gossips this peer's watermark view to every voter and known observer. */
  private publish (): void {
    if (this.role !== 'voter') return
    this.lastGossip = this.now()
    this.wmDirty = false
    const msg: Message = { t: 'wm', wm: this.watermarkEntries() }
    for (const v of this.cur.voters) this.send(v, msg)
    for (const o of this.observers.keys()) this.send(o, msg)
    this.kickEvaluator()
  }

  /** Sends queued writes and a changed watermark at the end of the current turn, coalesced. */
  private scheduleFlush (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(() => {
      this.flushScheduled = false
      if (this.closed) return
      if (this.outbox.length > 0) {
        const thunks = this.outbox
        this.outbox = []
        for (let i = 0; i < thunks.length; i += C.DEFAULT_WRITE_BATCH) {
          const msg: Message = { t: 'write', thunks: thunks.slice(i, i + C.DEFAULT_WRITE_BATCH), wm: this.watermarkEntries() }
          for (const v of this.cur.voters) this.send(v, msg)
          for (const o of this.observers.keys()) this.send(o, msg)
        }
        this.lastGossip = this.now()
      }
      if (this.wmDirty) this.publish()
    })
  }

  // --------------------------------------------------------- coordinator

  private handleSubmit (req: SubmitRequest, waiter: Waiter): void {
    if (this.closed || this.failure !== undefined) {
      this.settleWaiter(waiter, req.clientTxnId, undefined, new PeerClosedError(`peer ${this.id} is not serving`))
      return
    }
    // Checked here on every peer (an observer too, before forwarding), so bad input fails at once with a named error.
    let checked
    try {
      checked = this.checkSubmit(req)
    } catch (err) {
      this.count('submit-refused')
      this.settleWaiter(waiter, req.clientTxnId, undefined, err as Error)
      return
    }
    this.addWaiter(req.clientTxnId, waiter)
    this.route(req, checked)
  }

  private checkSubmit (req: SubmitRequest): Checked {
    const proc = resolveProcedure(this.registry, req.procedure, req.hash)
    checkValue(req.args, this.opts.maxValueBytes)
    return { procedure: proc.name, hash: proc.hash, ...declaredKeys(proc, req.args) }
  }

  /** Sends a checked submission on its way: an observer forwards it, a voter mints it (after an epoch change if sealed). */
  private route (req: SubmitRequest, checked?: Checked): void {
    if (this.role !== 'voter') {
      this.forward(req)
      return
    }
    if (this.sealed || this.installing) {
      this.deferred.set(req.clientTxnId, req)
      return
    }
    if (this.minted.has(req.clientTxnId)) return
    // Exactly once without a store read here: the applier's record makes a
    // retry of a decided clientTxnId a no-op answered with its first outcome.
    let init = checked
    try {
      init ??= this.checkSubmit(req)
    } catch (err) {
      this.rejectWaiters(req.clientTxnId, err as Error)
      return
    }
    this.mint(req, init)
  }

  private mint (req: SubmitRequest, init: Checked): void {
    const thunk: Thunk = {
      ts: this.minter.mint(this.now()),
      epoch: this.cur.epoch,
      coordinator: this.id,
      seq: this.nextSeq++,
      procedure: init.procedure,
      hash: init.hash,
      args: req.args,
      reads: init.reads,
      writes: init.writes,
      clientTxnId: req.clientTxnId
    }
    this.minted.set(req.clientTxnId, thunk.ts)
    this.inflight.set(thunk.seq, { thunk, acks: new Set(), mintedAt: this.now(), sentAt: this.now(), tries: 0 })
    this.count('minted')
    // Persist locally before anyone else sees it, so a restart never reuses its sequence number.
    this.acceptThunk(thunk, this.id)
  }

  private onAck (from: string, epoch: number, seqs: readonly number[]): void {
    if (this.role !== 'voter' || epoch !== this.cur.epoch || !this.cur.voters.includes(from)) {
      this.count('ack-refused')
      return
    }
    const firstBefore = this.inflight.keys().next().value
    const now = this.now()
    for (const seq of seqs) {
      const e = this.inflight.get(seq)
      if (e === undefined) continue
      e.acks.add(from)
      if (e.acks.size >= this.cur.majority) {
        this.inflight.delete(seq)
        this.srtt += (Math.max(0, now - e.mintedAt) - this.srtt) / 8
      }
    }
    if (this.inflight.keys().next().value !== firstBefore) {
      this.wmDirty = true
      this.scheduleFlush()
    }
  }

  private retransmit (now: number): void {
    const rto = Math.max(this.opts.writeRetryMs, 3 * this.srtt)
    // Entries are in mint order and were first sent in that order: if the oldest is not due, none is.
    const oldest = this.inflight.values().next()
    if (oldest.done === true || (oldest.value.tries === 0 && now - oldest.value.sentAt < rto)) return
    const perVoter = new Map<string, Thunk[]>()
    for (const e of this.inflight.values()) {
      if (now - e.sentAt < Math.min(rto * 2 ** e.tries, 2_000)) continue
      if (!e.acks.has(this.id)) continue // still being persisted locally
      e.sentAt = now
      e.tries++
      for (const v of this.cur.voters) {
        if (e.acks.has(v)) continue
        let list = perVoter.get(v)
        if (list === undefined) { list = []; perVoter.set(v, list) }
        list.push(e.thunk)
      }
    }
    if (perVoter.size === 0) return
    const wm = this.watermarkEntries()
    for (const [v, thunks] of perVoter) {
      this.count('retransmit', thunks.length)
      for (let i = 0; i < thunks.length; i += C.DEFAULT_WRITE_BATCH) this.send(v, { t: 'write', thunks: thunks.slice(i, i + C.DEFAULT_WRITE_BATCH), wm })
    }
  }

  // ------------------------------------------------------------- replica

  /**
   * Stores a thunk from its coordinator, a gap fill or a decided epoch
   * change (`from` undefined) without checks on its content: S-phase.
   */
  private acceptThunk (thunk: Thunk, from: string | undefined): void {
    const es = this.epochs.get(thunk.epoch)
    const s = es?.streams.get(thunk.coordinator)
    if (es === undefined || s === undefined || es.tags.get(thunk.coordinator) !== thunk.ts.slice(12, 28)) {
      if (thunk.epoch > this.cur.epoch && from !== undefined) this.noticeEpoch(from)
      this.count('thunk-refused')
      this.log('thunk-refused', { from, coordinator: thunk.coordinator, epoch: thunk.epoch })
      return
    }
    if (es.floor !== undefined && (thunk.seq > (s.end ?? 0) || s.skip?.has(thunk.seq) === true)) {
      this.count('thunk-cut')
      return
    }
    const isWrite = from !== undefined && from === thunk.coordinator && from !== this.id
    if (isWrite && es === this.cur && (this.sealed || this.installing)) {
      // A sealed voter reported what it holds; taking more could let a thunk reach a majority behind the cut.
      this.count('write-sealed')
      return
    }
    if (es === this.cur && thunk.coordinator !== this.id) this.observeTimestamp(thunk.ts)
    if (thunk.seq < s.evalNext || s.held.has(thunk.seq)) {
      // Already durable here: the coordinator missed our ack.
      if (this.role === 'voter' && isWrite && es === this.cur) this.send(thunk.coordinator, { t: 'ack', epoch: thunk.epoch, seqs: [thunk.seq], wm: this.watermarkEntries() })
      return
    }
    if (s.receiving.has(thunk.seq)) return
    if (thunk.ts < this.frontier) {
      // A correct coordinator never writes below a watermark it promised; keep going, loudly.
      this.count('late-thunk')
      this.log('late-thunk', { ts: thunk.ts, frontier: this.frontier })
    }
    s.receiving.add(thunk.seq)
    this.persistQueue.push(thunk)
    void this.runWriter()
  }

  /** Group commit: one strict store batch for everything received since the last one. */
  private async runWriter (): Promise<void> {
    if (this.writing) return
    this.writing = true
    try {
      while (this.persistQueue.length > 0 && !this.closed) {
        const batch = this.persistQueue
        this.persistQueue = []
        await this.store.write({ thunks: batch, durability: 'strict' })
        if (this.closed) return
        const acks = new Map<string, number[]>()
        // A sealed voter acks nothing more of its epoch: its report to the proposer must stay true.
        const acking = this.role === 'voter' && !this.sealed && !this.installing
        for (const thunk of batch) {
          const es = this.epochs.get(thunk.epoch)
          const s = es?.streams.get(thunk.coordinator)
          if (es === undefined || s === undefined) continue
          s.receiving.delete(thunk.seq)
          if (thunk.seq < s.evalNext) continue
          if (es.floor !== undefined && (thunk.seq > (s.end ?? 0) || s.skip?.has(thunk.seq) === true)) continue
          s.held.set(thunk.seq, thunk)
          advanceHave(s)
          if (es !== this.cur) continue
          if (thunk.coordinator === this.id) {
            const e = this.inflight.get(thunk.seq)
            if (e !== undefined) {
              e.acks.add(this.id)
              e.sentAt = this.now()
              if (e.acks.size >= this.cur.majority) this.inflight.delete(thunk.seq)
            }
            if (!this.sealed) this.outbox.push(thunk)
          } else if (acking) {
            let list = acks.get(thunk.coordinator)
            if (list === undefined) { list = []; acks.set(thunk.coordinator, list) }
            list.push(thunk.seq)
          }
        }
        if (acks.size > 0) {
          const wm = this.watermarkEntries()
          for (const [c, seqs] of acks) this.send(c, { t: 'ack', epoch: this.cur.epoch, seqs, wm })
        }
        if (this.outbox.length > 0) this.scheduleFlush()
        this.kickEvaluator()
      }
    } catch (err) {
      this.fail(err)
    } finally {
      this.writing = false
    }
  }

  private askForGaps (now: number): void {
    for (const es of this.epochs.values()) {
      for (const [c, s] of es.streams) {
        const need = es.floor !== undefined ? (s.end ?? 0) : (es.wm.get(c)?.count ?? 0)
        if (s.have >= need || now - s.gapAskedAt < this.opts.gapRetryMs) continue
        let from = s.have + 1
        while (from <= need && (s.held.has(from) || s.receiving.has(from) || s.skip?.has(from) === true)) from++
        if (from > need) continue
        const to = Math.min(need, from + C.DEFAULT_GAP_BATCH - 1)
        s.gapAskedAt = now
        // Ask the coordinator first, then every other voter (of that epoch, then of the current one) in turn.
        const candidates = [...new Set([c, ...es.voters, ...this.cur.voters])].filter(v => v !== this.id)
        if (candidates.length === 0) continue
        const target = candidates[s.gapTarget++ % candidates.length] as string
        this.count('gap-req')
        this.send(target, { t: 'gap-req', coordinator: c, epoch: es.epoch, from, to })
      }
    }
  }

  private async serveGap (to: string, coordinator: string, epoch: number, from: number, upTo: number): Promise<void> {
    try {
      const last = Math.min(upTo, from + C.DEFAULT_GAP_BATCH - 1)
      const thunks = await this.store.thunkRange(coordinator, epoch, from, last)
      if (thunks.length > 0) this.send(to, { t: 'gap-rep', thunks })
    } catch (err) {
      this.fail(err)
    }
  }

  // ---------------------------------------------------------- evaluation

  private kickEvaluator (): void {
    if (!this.evaluating && !this.closed) void this.runEvaluator()
  }

  /**
   * Takes the next run of thunks that can be evaluated: in timestamp order
   * (a merge of the coordinators' sequences of the epoch being evaluated),
   * below that epoch's watermark (or, once its successor is decided, up to
   * its cut), and only while no coordinator may still have an unseen thunk
   * below the candidate. A run never spans two epochs.
   */
  private collectRun (max: number): { run: Thunk[], blocked: boolean, next: Timestamp | undefined } {
    const run: Thunk[] = []
    for (;;) {
      const es = this.epochs.get(this.evalEpoch) as EpochState
      const cut = es.floor !== undefined
      const V = es.wm.value
      while (run.length < max) {
        let best: Thunk | undefined
        let bestStream: Stream | undefined
        let blocked = false
        for (const [c, s] of es.streams) {
          while (s.skip?.has(s.evalNext) === true) s.evalNext++
          if (cut && s.evalNext > (s.end ?? 0)) continue
          const t = s.held.get(s.evalNext)
          if (t !== undefined) {
            if (best === undefined || t.ts < best.ts) { best = t; bestStream = s }
          } else if (cut || s.evalNext <= (es.wm.get(c)?.count ?? 0)) {
            blocked = true
          }
        }
        if (blocked) return { run, blocked: true, next: undefined }
        if (best === undefined) break
        if (!cut && best.ts >= V) return { run, blocked: false, next: best.ts }
        ;(bestStream as Stream).evalNext++
        run.push(best)
      }
      if (run.length >= max) return { run, blocked: true, next: undefined }
      if (!cut) return { run, blocked: false, next: undefined }
      // Every kept thunk of this epoch is evaluated (or in this run): the next epoch may start after it.
      if (run.length > 0 || !this.epochs.has(es.epoch + 1)) return { run, blocked: true, next: undefined }
      this.epochs.delete(es.epoch)
      this.evalEpoch = es.epoch + 1
      // Everything below the floor is evaluated now; the new epoch's thunks all lie above it.
      this.frontier = maxTimestamp(this.frontier, es.floor as Timestamp)
      this.log('epoch-evaluated', { epoch: es.epoch, frontier: this.frontier })
    }
  }

  private async runEvaluator (): Promise<void> {
    if (this.evaluating) return
    this.evaluating = true
    try {
      while (!this.closed && this.failure === undefined) {
        const { run, blocked, next } = this.collectRun(4096)
        if (run.length > 0) await this.evaluateRun(run)
        if (this.closed) return
        if (run.length === 0) {
          const V = (this.epochs.get(this.evalEpoch) as EpochState).wm.value
          const reach = blocked ? this.frontier : (next !== undefined && next < V ? next : V)
          if (reach > this.frontier) this.frontier = reach
          this.serveReads()
          return
        }
      }
    } catch (err) {
      this.fail(err)
    } finally {
      this.evaluating = false
    }
  }

  private async evaluateRun (run: Thunk[]): Promise<void> {
    const es = this.epochs.get(this.evalEpoch) as EpochState
    const evalNext: Record<string, number> = {}
    for (const [c, s] of es.streams) evalNext[c] = s.evalNext
    const base: Cursor = { frontier: this.frontier, last: this.lastEvaluated, count: this.evaluatedCount, digest: this.hasher.state, evalNext, epoch: es.epoch }
    const applied = await this.applier(run, base)
    if (this.closed) return
    this.hasher = Hasher.restore(applied.cursor.digest)
    this.lastEvaluated = applied.cursor.last
    this.evaluatedCount = applied.cursor.count
    this.frontier = maxTimestamp(this.frontier, applied.cursor.frontier)
    for (let i = 0; i < run.length; i++) {
      const thunk = run[i] as Thunk
      es.streams.get(thunk.coordinator)?.held.delete(thunk.seq)
      if (this.minted.get(thunk.clientTxnId) === thunk.ts) this.minted.delete(thunk.clientTxnId)
      this.resolveWaiters(thunk.clientTxnId, applied.results[i] as TxnResult)
    }
    this.count('evaluated', run.length)
    for (const c of applied.checkpoints) {
      this.checkpoints.set(c.count, c.digest)
      if (this.checkpoints.size > C.CHECKPOINTS_KEPT) this.checkpoints.delete(this.checkpoints.keys().next().value as number)
    }
    for (const l of this.appliedListeners) l({ written: applied.written, frontier: this.frontier })
    this.serveReads()
  }

  // --------------------------------------------------------------- reads

  private serveReads (): void {
    if (this.pendingReads.length === 0) return
    const ready = this.pendingReads.filter(r => r.ts < this.frontier)
    if (ready.length === 0) return
    this.pendingReads = this.pendingReads.filter(r => r.ts >= this.frontier)
    for (const r of ready) void this.readAt(r.keys, r.ts).then(r.resolve, err => { this.fail(err) })
  }

  private async readAt (keys: readonly string[], ts: Timestamp): Promise<ReadResult> {
    const found = await this.store.latestValues(keys, ts)
    const values: Record<string, Value> = {}
    for (let i = 0; i < keys.length; i++) {
      const v = found[i]
      if (v !== undefined) values[keys[i] as string] = v
    }
    return { ts, values }
  }

  /** A read-only transaction. Strict: at a voter-minted timestamp, waiting for the watermark. Snapshot: at this replica's frontier, at once. */
  private async serveRead (keys: readonly string[], consistency: ReadConsistency, options: CallOptions = {}): Promise<ReadResult> {
    if (this.failure !== undefined) throw new PeerClosedError(`peer ${this.id} failed: ${this.failure}`)
    if (consistency === 'snapshot') return await this.readAt(keys, this.frontier)
    const ts = this.role === 'voter' ? await this.confirmedTimestamp(options) : await this.requestTimestamp(options)
    return await new Promise<ReadResult>((resolve, reject) => {
      let release = (): void => {}
      const entry: PendingRead = { ts, keys, resolve: r => { release(); resolve(r) } }
      this.pendingReads.push(entry)
      release = this.guard(options, reject, () => { this.pendingReads = this.pendingReads.filter(r => r !== entry) })
      this.serveReads()
    })
  }

  /**
   * A strict read's timestamp from this voter. A voter voted out of a later
   * epoch it has not heard of yet would mint one below transactions that
   * already completed there, so the timestamp counts only once a majority of
   * this epoch's voters said, after it was minted, that the epoch is still
   * current and unsealed (a ReadIndex-style check; one round serves every
   * read that waits for it). If the epoch changes meanwhile, it mints again.
   */
  private async confirmedTimestamp (options: CallOptions): Promise<Timestamp> {
    for (;;) {
      if (this.role !== 'voter') return await this.requestTimestamp(options)
      const ts = this.minter.mint(this.now())
      const ok = await new Promise<boolean>((resolve, reject) => {
        let release = (): void => {}
        const waiter = (v: boolean): void => { release(); resolve(v) }
        this.confirmQueue.push(waiter)
        release = this.guard(options, reject, () => { this.confirmQueue = this.confirmQueue.filter(w => w !== waiter) })
        this.startConfirm()
      })
      if (ok) return ts
    }
  }

  private confirmQueue: Array<(ok: boolean) => void> = []
  private confirmRound = 0
  private confirming: { readonly round: number, readonly epoch: number, readonly oks: Set<string>, readonly waiters: Array<(ok: boolean) => void>, sentAt: number } | undefined

  private startConfirm (): void {
    if (this.confirming !== undefined || this.confirmQueue.length === 0) return
    const waiters = this.confirmQueue
    this.confirmQueue = []
    const c = { round: ++this.confirmRound, epoch: this.cur.epoch, oks: new Set<string>(), waiters, sentAt: this.now() }
    this.confirming = c
    if (!this.sealed && !this.installing) c.oks.add(this.id)
    this.sendConfirm(c)
    this.checkConfirm()
  }

  private sendConfirm (c: NonNullable<Peer['confirming']>): void {
    c.sentAt = this.now()
    for (const v of this.cur.voters) if (!c.oks.has(v)) this.send(v, { t: 'confirm', epoch: c.epoch, round: c.round })
  }

  private onConfirmed (from: string, epoch: number, round: number): void {
    const c = this.confirming
    if (c === undefined || c.round !== round || c.epoch !== epoch || epoch !== this.cur.epoch || !this.cur.voters.includes(from)) return
    c.oks.add(from)
    this.checkConfirm()
  }

  private checkConfirm (): void {
    const c = this.confirming
    if (c === undefined || c.oks.size < this.cur.majority) return
    this.confirming = undefined
    for (const w of c.waiters) w(true)
    this.startConfirm()
  }

  /** An epoch change fails every confirmation under way: those reads mint again in the new epoch. */
  private failConfirmations (): void {
    const waiters = [...(this.confirming?.waiters ?? []), ...this.confirmQueue]
    this.confirming = undefined
    this.confirmQueue = []
    for (const w of waiters) w(false)
  }

  private requestTimestamp (options: CallOptions): Promise<Timestamp> {
    return new Promise<Timestamp>((resolve, reject) => {
      const reqId = `${this.id}:ts:${++this.reqCounter}`
      let release = (): void => {}
      const r: TsRequest = { resolve: ts => { release(); resolve(ts) }, sentAt: this.now(), to: '' }
      this.tsRequests.set(reqId, r)
      release = this.guard(options, reject, () => { this.tsRequests.delete(reqId) })
      this.sendTsRequest(reqId, r)
    })
  }

  private sendTsRequest (reqId: string, r: TsRequest): void {
    r.to = this.homeVoter(r.to)
    r.sentAt = this.now()
    this.send(r.to, { t: 'ts-req', reqId })
  }

  /**
   * The voter an observer sends its submissions and timestamp requests to: the
   * same one until a request sent there (`failed`) goes unanswered, then the
   * next. Keeping to one voter lets the transport bundle concurrent requests
   * and their answers into one frame each way; the first home is picked by
   * this peer's id, so observers spread over the voters.
   */
  private homeVoter (failed: string): string {
    const voters = this.cur.voters
    let at = this.home === undefined ? -1 : voters.indexOf(this.home)
    if (at < 0) at = Number.parseInt(hash64(this.id).slice(0, 8), 16) % voters.length
    else if (failed === this.home) at = (at + 1) % voters.length
    this.home = voters[at] as string
    return this.home
  }

  /**
   * Rejects through `reject` on abort or timeout. The timeout runs on the
   * injected clock, checked by tick(), so simulated time governs it. The
   * caller releases the guard once it settled otherwise: every tick checks
   * every guard, so guards left until their deadline made each tick's cost
   * grow with the strict-read rate.
   */
  private guard (options: CallOptions, reject: (e: Error) => void, cleanup: () => void): () => void {
    const deadline = this.now() + (options.timeoutMs ?? this.opts.callTimeoutMs)
    const onAbort = (): void => { if (check()) release() }
    const release = (): void => {
      this.guards.delete(check)
      options.signal?.removeEventListener('abort', onAbort)
    }
    const check = (): boolean => {
      if (options.signal?.aborted === true) { cleanup(); reject(new AbortError('aborted')); return true }
      if (this.now() >= deadline) { cleanup(); reject(new QuorumUnavailableError('timed out waiting for the watermark')); return true }
      if (this.closed) { cleanup(); reject(new PeerClosedError('peer closed')); return true }
      return false
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    this.guards.add(check)
    return release
  }

  private readonly guards = new Set<() => boolean>()

  // ------------------------------------------------------------- waiters

  /** Earliest deadline of a local waiter (a lower bound; Infinity when none). */
  private nextDeadline = Infinity

  private addWaiter (clientTxnId: string, w: Waiter): void {
    if (w.kind === 'local' && w.deadline < this.nextDeadline) this.nextDeadline = w.deadline
    const list = this.waiters.get(clientTxnId)
    if (list === undefined) this.waiters.set(clientTxnId, [w])
    else list.push(w)
  }

  private settleWaiter (w: Waiter, clientTxnId: string, result: TxnResult | undefined, err: Error | undefined): void {
    if (w.kind === 'local') {
      if (result !== undefined) w.resolve(result)
      else w.reject(err as Error)
    } else if (result !== undefined) {
      this.send(w.to, { t: 'submit-rep', clientTxnId, result })
    } else {
      this.send(w.to, { t: 'submit-rep', clientTxnId, error: errorInfo(err) })
    }
  }

  private resolveWaiters (clientTxnId: string, result: TxnResult): void {
    this.finishWaiters(clientTxnId, result, undefined)
  }

  private rejectWaiters (clientTxnId: string, err: Error): void {
    this.finishWaiters(clientTxnId, undefined, err)
  }

  private finishWaiters (clientTxnId: string, result: TxnResult | undefined, err: Error | undefined): void {
    this.forwards.delete(clientTxnId)
    const list = this.waiters.get(clientTxnId)
    if (list === undefined) return
    this.waiters.delete(clientTxnId)
    for (const w of list) this.settleWaiter(w, clientTxnId, result, err)
  }

  private expireWaiters (now: number): void {
    for (const check of this.guards) if (check()) this.guards.delete(check)
    if (now < this.nextDeadline) return
    this.nextDeadline = Infinity
    for (const [id, list] of this.waiters) {
      for (const w of list) if (w.kind === 'local' && w.deadline > now && w.deadline < this.nextDeadline) this.nextDeadline = w.deadline
      const keep = list.filter(w => {
        if (w.kind !== 'local' || now < w.deadline) return true
        w.reject(new QuorumUnavailableError(`no result for ${id} in time; the outcome is unknown, retry with the same clientTxnId`))
        return false
      })
      if (keep.length === 0) { this.waiters.delete(id); this.forwards.delete(id) } else if (keep.length !== list.length) this.waiters.set(id, keep)
    }
  }

  private forward (req: SubmitRequest): void {
    if (this.forwards.has(req.clientTxnId)) return
    const f: Forward = { req, sentAt: this.now(), to: '' }
    this.forwards.set(req.clientTxnId, f)
    this.sendForward(f)
  }

  private sendForward (f: Forward): void {
    f.to = this.homeVoter(f.to)
    f.sentAt = this.now()
    this.send(f.to, { t: 'submit', req: f.req, replyTo: this.id })
  }

  private retryForwards (now: number): void {
    const every = this.opts.writeRetryMs * 5
    for (const f of this.forwards.values()) if (now - f.sentAt >= every) this.sendForward(f)
    for (const [reqId, r] of this.tsRequests) if (now - r.sentAt >= every) this.sendTsRequest(reqId, r)
  }

  // ------------------------------------------------------ reconfiguration

  private suspects (v: string, now: number): boolean {
    if (v === this.id) return false
    const heard = this.lastHeard.get(v) ?? this.epochStartedAt
    if (now - Math.max(heard, this.epochStartedAt) > this.opts.suspectMs) return true
    // Entries freeze while the epoch is being cut, so a stuck entry only counts outside that.
    if (this.sealed) return false
    const moved = this.wmMovedAt.get(v) ?? this.epochStartedAt
    return now - Math.max(moved, this.epochStartedAt) > this.opts.suspectMs
  }


  /** The voters this voter would like the next epoch to have: suspects out, leavers out, admissible candidates in. */
  private wantedVoters (now: number, alive: ReadonlySet<string> = new Set()): string[] {
    let want = this.cur.voters.filter(v => alive.has(v) || !this.suspects(v, now))
    if (this.leaving) want = want.filter(v => v !== this.id)
    if (!this.leaving) {
      for (const [c, info] of [...this.candidates].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
        if (want.length >= this.opts.maxVoters) break
        if (info.epoch === this.cur.epoch && !want.includes(c) && this.opts.admitVoter(c)) want.push(c)
      }
    }
    return want
  }

  /**
   * The failure detector and the trigger: a voter that suspects another one
   * (silent, or its watermark entry stuck, for suspectMs), is leaving, sees
   * an admissible candidate, or has been sealed without a decision for too
   * long, proposes the next epoch. Live voters take turns by rank so that
   * one proposal usually runs alone.
   */
  private detectFailures (now: number): void {
    if (this.installing) return
    if (this.proposal !== undefined) {
      if (now - this.proposal.startedAt <= this.opts.proposeTimeoutMs) return
      this.count('rc-proposal-timeout')
      this.proposal = undefined
      this.nextProposeAt = now + this.backoff(now)
    }
    if (now < this.nextProposeAt) return
    const want = this.wantedVoters(now)
    const changed = want.length !== this.cur.voters.length || want.some(v => !this.cur.voters.includes(v))
    const stuck = this.sealed && now - this.sealedAt > this.opts.proposeTimeoutMs * 2
    if (!(changed && want.length > 0) && !stuck && !this.forcePropose) {
      this.changeWantedSince = undefined
      return
    }
    this.changeWantedSince ??= now
    if (now - this.changeWantedSince < this.backoff(now) - this.opts.proposeTimeoutMs) return
    this.forcePropose = false
    this.startProposal(now)
  }

  private forcePropose = false

  /** Rank among the voters this one believes alive: the first proposes at once, the others wait their turn. */
  private backoff (now: number): number {
    const live = this.cur.voters.filter(v => !this.suspects(v, now))
    return this.opts.proposeTimeoutMs * (1 + Math.max(0, live.indexOf(this.id)))
  }

  private startProposal (now: number): void {
    const ballot: Ballot = { n: ++this.highestBallot, by: this.id }
    this.proposal = { epoch: this.cur.epoch, ballot, startedAt: now, promises: new Map(), accepts: new Set() }
    this.count('rc-proposed')
    this.log('rc-propose', { epoch: this.cur.epoch, ballot })
    for (const v of this.cur.voters) this.sendRc(v, { t: 'rc-prepare', epoch: this.cur.epoch, ballot })
  }

  /** Sends a reconfiguration message; to itself it is delivered on the next microtask, like any other. */
  private sendRc (to: string, m: Message): void {
    if (to !== this.id) {
      this.send(to, m)
      return
    }
    queueMicrotask(() => { if (!this.closed) this.dispatch(this.id, m) })
  }

  /** Durably records the acceptor state, then answers. */
  private persistAcceptor (state: AcceptorState, then: () => void): void {
    this.acceptor = state
    this.acceptorWrites = this.acceptorWrites.then(
      async () => { await this.store.write({ meta: [['paxos', state as unknown as Value]], durability: 'strict' }) }
    ).then(() => { if (!this.closed && this.acceptor === state) then() }, err => { this.fail(err) })
  }

  /** Whether an rc message for `epoch` from `from` is for this voter's current epoch and from one of its voters. */
  private rcApplies (from: string, epoch: number): boolean {
    if (epoch < this.cur.epoch) {
      this.tellStale(from, epoch)
      return false
    }
    if (epoch > this.cur.epoch) {
      this.noticeEpoch(from)
      return false
    }
    if (this.role !== 'voter' || !this.cur.voters.includes(from)) {
      // Only the epoch's voters may propose or take part: anything else is refused.
      this.count('rc-refused')
      return false
    }
    return !this.installing
  }

  private seal (): void {
    if (this.sealed) return
    this.sealedAt = this.now()
    this.count('rc-sealed')
  }

  /** Whether this acceptor may take `ballot` from `from` (its epoch's voter, not below its promise); answers a nack if not. */
  private takesBallot (from: string, epoch: number, ballot: Ballot): boolean {
    if (!this.rcApplies(from, epoch)) return false
    this.highestBallot = Math.max(this.highestBallot, ballot.n)
    const promised = this.acceptor.promised
    if (promised !== undefined && compareBallots(ballot, promised) < 0) {
      this.sendRc(from, { t: 'rc-nack', epoch, ballot: promised })
      return false
    }
    return true
  }

  private onPrepare (from: string, epoch: number, ballot: Ballot): void {
    if (!this.takesBallot(from, epoch, ballot)) return
    this.seal()
    const state: AcceptorState = { ...this.acceptor, promised: ballot }
    this.persistAcceptor(state, () => {
      const accepted = state.accepted
      this.sendRc(from, { t: 'rc-promise', epoch, ballot, ...(accepted === undefined ? {} : { accepted }), report: this.report() })
    })
  }

  /** What this sealed voter holds of its epoch: contiguous prefixes, everything unevaluated, and a timestamp above all its promises. */
  private report (): EpochReport {
    const have: Array<{ coordinator: string, seq: number }> = []
    const held: Thunk[] = []
    for (const [c, s] of this.cur.streams) {
      have.push({ coordinator: c, seq: s.have })
      for (const t of s.held.values()) held.push(t)
    }
    return { have, held, top: this.minter.mint(this.now()) }
  }

  private onAccept (from: string, epoch: number, ballot: Ballot, value: EpochChange): void {
    if (!this.takesBallot(from, epoch, ballot)) return
    if (value.epoch !== epoch + 1) {
      this.count('rc-refused')
      return
    }
    this.seal()
    const state: AcceptorState = { epoch, promised: ballot, accepted: { ballot, value } }
    this.persistAcceptor(state, () => { this.sendRc(from, { t: 'rc-accepted', epoch, ballot }) })
  }

  private onPromise (from: string, epoch: number, ballot: Ballot, accepted: { ballot: Ballot, value: EpochChange } | undefined, report: EpochReport): void {
    const p = this.proposal
    if (p === undefined || p.epoch !== epoch || !sameBallot(p.ballot, ballot) || p.value !== undefined || !this.cur.voters.includes(from)) return
    p.promises.set(from, { accepted, report })
    if (p.promises.size < this.cur.majority) return
    // A voter that promised is alive: it is never voted out here (only suspects that stayed silent are).
    const voters = this.wantedVoters(this.now(), new Set(p.promises.keys()))
    if (voters.length === 0) {
      this.proposal = undefined
      return
    }
    p.value = chooseValue(p.promises, this.cur.voters, epoch + 1, voters)
    this.log('rc-accept', { epoch, ballot, voters: p.value.voters })
    for (const v of this.cur.voters) this.sendRc(v, { t: 'rc-accept', epoch, ballot, value: p.value })
  }

  private onAccepted (from: string, epoch: number, ballot: Ballot): void {
    const p = this.proposal
    if (p?.value === undefined || p.epoch !== epoch || !sameBallot(p.ballot, ballot) || !this.cur.voters.includes(from)) return
    p.accepts.add(from)
    if (p.accepts.size < this.cur.majority) return
    const value = p.value
    this.proposal = undefined
    this.count('rc-decided')
    const to = new Set([...this.cur.voters, ...value.voters, ...this.observers.keys(), ...this.candidates.keys()])
    for (const peer of to) this.send(peer, { t: 'rc-decided', value })
    void this.install(value)
  }

  private onNack (epoch: number, ballot: Ballot): void {
    this.highestBallot = Math.max(this.highestBallot, ballot.n)
    const p = this.proposal
    if (p === undefined || p.epoch !== epoch || compareBallots(ballot, p.ballot) <= 0) return
    this.count('rc-nacked')
    this.proposal = undefined
    this.nextProposeAt = this.now() + this.backoff(this.now())
  }

  /** A decision is taken only from a voter of the epoch it ends; older ones are replays, newer ones need the ones between. */
  private onDecided (from: string, value: EpochChange): void {
    if (value.epoch <= this.cur.epoch) {
      this.count('rc-decided-replay')
      return
    }
    if (value.epoch > this.cur.epoch + 1) {
      this.noticeEpoch(from)
      return
    }
    if (!this.cur.voters.includes(from)) {
      this.count('rc-decided-refused')
      return
    }
    void this.install(value)
  }

  /** Asks for the decision that ended this peer's epoch (it saw a newer one). */
  private noticeEpoch (from: string): void {
    const now = this.now()
    if (this.installing || now - this.lastEpochFetch < C.DEFAULT_EPOCH_FETCH_MS) return
    this.lastEpochFetch = now
    const m: Message = { t: 'rc-fetch', epoch: this.cur.epoch }
    for (const v of new Set([from, ...this.cur.voters])) this.send(v, m)
  }

  /** Tells a peer still in an old epoch how it ended (it checks that this peer was a voter of it). */
  private tellStale (to: string, epoch: number, asked = false): void {
    const now = this.now()
    if (!asked && now - (this.staleToldAt.get(to) ?? -Infinity) < C.DEFAULT_EPOCH_FETCH_MS) return
    this.staleToldAt.set(to, now)
    if (this.staleToldAt.size > 1024) this.staleToldAt.delete(this.staleToldAt.keys().next().value as string)
    void this.store.getMeta(`decision:${epoch + 1}`).then(value => {
      if (value !== undefined) this.send(to, { t: 'rc-decided', value: value as unknown as EpochChange })
    }, err => { this.fail(err) })
  }

  /**
   * Installs the decided change to `value.epoch`: persists it, cuts the old
   * epoch (kept thunks stay, the rest are aborted), starts the new epoch
   * above the decided floor, re-submits this peer's aborted thunks with
   * their clientTxnIds (exactly once: the applier's records dedupe), and
   * mints what waited while sealed.
   */
  private async install (value: EpochChange): Promise<void> {
    if (this.installing || value.epoch !== this.cur.epoch + 1) return
    this.installing = true
    try {
      const config: GroupConfig = { ...this.cfg, epoch: value.epoch, voters: value.voters }
      await this.store.write({ meta: [[`decision:${value.epoch}`, value as unknown as Value], ['config', config as unknown as Value]], durability: 'strict' })
      if (this.closed) return
      const old = this.cur
      const wasVoter = old.voters.includes(this.id)
      this.applyCut(old, value)
      const ownCut = value.cuts.find(c => c.coordinator === this.id)
      const aborted: Thunk[] = []
      for (const e of this.inflight.values()) if (!keeps(ownCut, e.thunk.seq)) aborted.push(e.thunk)
      this.inflight.clear()
      this.outbox = []
      this.cur = newEpochState(value.epoch, value.voters)
      this.epochs.set(value.epoch, this.cur)
      this.cfg = config
      this.minter.floor(value.floor)
      this.nextSeq = 1
      this.lastPromise = undefined
      this.lastEntry = undefined
      this.acceptor = { epoch: value.epoch }
      this.proposal = undefined
      this.sealedAt = -Infinity
      this.changeWantedSince = undefined
      this.nextProposeAt = -Infinity
      this.epochStartedAt = this.now()
      this.lastHeard.clear()
      this.wmMovedAt.clear()
      for (const v of value.voters) { this.observers.delete(v); this.candidates.delete(v) }
      this.installing = false
      this.failConfirmations()
      for (const t of value.thunks) this.acceptThunk(t, undefined)
      this.count('rc-installed')
      this.log('rc-installed', { epoch: value.epoch, voters: value.voters, aborted: aborted.length, kept: value.thunks.length })
      if (wasVoter) {
        const m: Message = { t: 'rc-decided', value }
        for (const peer of new Set([...this.observers.keys(), ...this.candidates.keys(), ...value.voters])) this.send(peer, m)
      }
      // Aborted thunks never took effect anywhere: their submissions go round again under the same clientTxnId.
      for (const t of aborted) {
        this.minted.delete(t.clientTxnId)
        this.count('rc-resubmitted')
        if (this.waiters.has(t.clientTxnId)) this.route({ clientTxnId: t.clientTxnId, procedure: t.procedure, hash: t.hash, args: t.args })
      }
      const deferred = [...this.deferred.values()]
      this.deferred.clear()
      for (const req of deferred) if (this.waiters.has(req.clientTxnId)) this.route(req)
      for (const l of this.epochListeners) l({ epoch: value.epoch, voters: value.voters, aborted: aborted.length })
      if (this.role === 'voter') this.publish()
      else this.lastHello = -Infinity
      this.kickEvaluator()
    } catch (err) {
      this.fail(err)
    } finally {
      this.installing = false
    }
  }

  // ---------------------------------------------------------- public API

  /**
   * Submits a transaction through this peer and resolves with its evaluated
   * result. Resubmitting the same clientTxnId never applies it twice.
   */
  submit (req: SubmitRequest, options: CallOptions = {}): Promise<TxnResult> {
    return new Promise<TxnResult>((resolve, reject) => {
      if (options.signal?.aborted === true) { reject(new AbortError('aborted')); return }
      const deadline = this.now() + (options.timeoutMs ?? this.opts.callTimeoutMs)
      const waiter: Waiter = { kind: 'local', resolve, reject, deadline }
      options.signal?.addEventListener('abort', () => {
        const list = this.waiters.get(req.clientTxnId)
        if (list === undefined || !list.includes(waiter)) return
        this.waiters.set(req.clientTxnId, list.filter(w => w !== waiter))
        reject(new AbortError('aborted'))
      }, { once: true })
      this.handleSubmit(req, waiter)
    })
  }

  /** A read-only transaction over `keys`. */
  read (keys: readonly string[], options: ReadOptions = {}): Promise<ReadResult> {
    return this.serveRead(keys, options.consistency ?? 'strict', options)
  }

  /**
   * Calls `listener` after every evaluated run with the keys it wrote (live
   * queries re-read those). Returns the unsubscribe function.
   */
  onApplied (listener: (e: AppliedEvent) => void): () => void {
    this.appliedListeners.add(listener)
    return () => { this.appliedListeners.delete(listener) }
  }

  /** Calls `listener` after this peer installed a new epoch. Returns the unsubscribe function. */
  onEpoch (listener: (e: EpochEvent) => void): () => void {
    this.epochListeners.add(listener)
    return () => { this.epochListeners.delete(listener) }
  }

  /**
   * Starts an epoch change now (with the voters this peer would want), rather
   * than when the failure detector calls for one. Only a voter can; tests and
   * operators use it, and two voters calling it at once must still agree.
   */
  requestEpochChange (): void {
    if (this.role !== 'voter' || this.closed) return
    this.forcePropose = true
    this.nextProposeAt = -Infinity
    this.changeWantedSince = -Infinity
  }

  /**
   * Leaves the voter set gracefully: proposes the next epoch without this
   * peer and resolves once it is installed (this peer is then an observer
   * and keeps no one waiting). Rejects after `timeoutMs` if no majority agreed.
   */
  async leave (options: CallOptions = {}): Promise<void> {
    if (this.role !== 'voter') return
    if (this.cur.voters.length === 1) throw new QuorumUnavailableError('the only voter cannot leave its group')
    this.leaving = true
    this.nextProposeAt = -Infinity
    this.changeWantedSince = -Infinity
    await new Promise<void>((resolve, reject) => {
      let release = (): void => {}
      const off = this.onEpoch(e => {
        if (!e.voters.includes(this.id)) { off(); release(); resolve() }
      })
      release = this.guard(options, err => { off(); reject(err) }, () => { off() })
    })
  }

  /** The procedure hash a client must send for `procedure` (undefined if unknown). */
  procedureHash (procedure: string): string | undefined {
    return this.registry.procedures.get(procedure)?.hash
  }

  status (): PeerStatus {
    let unevaluated = 0
    for (const es of this.epochs.values()) for (const s of es.streams.values()) unevaluated += s.held.size
    return {
      id: this.id,
      role: this.role,
      epoch: this.cur.epoch,
      voters: this.cur.voters,
      sealed: this.sealed,
      watermark: this.cur.wm.value,
      frontier: this.frontier,
      lastEvaluated: this.lastEvaluated,
      evaluated: this.evaluatedCount,
      digest: this.hasher.digest(),
      inflight: this.inflight.size,
      unevaluated,
      failed: this.failure,
      diverged: this.divergence,
      counters: { ...this.counters }
    }
  }

  /** Per-coordinator sequence positions in the current epoch (tests and quiescence checks). */
  sequences (): Record<string, { have: number, evalNext: number }> {
    const out: Record<string, { have: number, evalNext: number }> = {}
    for (const [c, s] of this.cur.streams) out[c] = { have: s.have, evalNext: s.evalNext }
    return out
  }

  /** Whether every epoch before the current one is evaluated through its cut. */
  get evaluatingCurrentEpoch (): boolean {
    return this.evalEpoch === this.cur.epoch
  }

  /**
   * A consistent snapshot of this replica's evaluated state: values, exactly-once
   * records and the evaluation cursor, at the cursor's frontier. A new or
   * far-behind replica imports it into its store, opens, and fetches only the
   * thunks after it.
   */
  async exportSnapshot (): Promise<StoreSnapshot> {
    // Evaluation must not land a settlement between reading the cursor and the state.
    while (this.evaluating) await new Promise<void>(resolve => { queueMicrotask(resolve) })
    this.evaluating = true
    try {
      const cursor = await this.store.getMeta('cursor') as { frontier: Timestamp } | undefined
      const snap = await this.store.exportSnapshot(cursor?.frontier ?? TS_ZERO)
      // Only the replicated state travels: leases and other per-peer metadata stay home.
      return { ...snap, meta: snap.meta.filter(([name]) => name === 'cursor') }
    } finally {
      this.evaluating = false
      this.kickEvaluator()
    }
  }

  /** The current value of every key below this replica's frontier. */
  async snapshot (): Promise<Array<[string, Value]>> {
    return await this.store.entries(this.frontier)
  }

  private fail (err: unknown): void {
    if (this.failure !== undefined) return
    this.failure = errorInfo(err).message
    this.log('failed', { error: this.failure })
    const e = new StoreFailedError(`peer ${this.id} stopped: ${this.failure}`)
    for (const id of this.waiters.keys()) this.rejectWaiters(id, e)
  }

  /** Stops the peer: no more messages, pending calls fail with PeerClosedError. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const e = new PeerClosedError('peer closed')
    for (const [, list] of this.waiters) for (const w of list) if (w.kind === 'local') w.reject(e)
    this.waiters.clear()
    for (const check of this.guards) check()
    this.guards.clear()
  }

  /** Stops without touching the store (simulated crash: in-memory state is simply gone). */
  crash (): void {
    this.closed = true
  }
}
