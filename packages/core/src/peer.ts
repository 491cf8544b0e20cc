import * as C from './constants.js'
import { AbortError, PeerClosedError, QuorumUnavailableError, StoreFailedError, errorFromInfo } from './errors.js'
import { Hasher } from './hash.js'
import type { Message } from './messages.js'
import { declaredKeys, resolveProcedure, type ProcedureRegistry } from './procedures.js'
import { decodeRecord, storeApplier, toResult, type Cursor, type RunApplier } from './apply.js'
import type { Store, StoreSnapshot } from './store.js'
import { TS_ZERO, TimestampMinter, maxTimestamp, peerTag, timestampMs, type Timestamp } from './timestamp.js'
import type { GroupConfig, ReadConsistency, ReadResult, Role, SubmitRequest, Thunk, TxnResult, WatermarkEntry } from './types.js'
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
  /** Every seq <= have is persisted here (evaluated or held). */
  have: number
  /** Next seq to evaluate. */
  evalNext: number
  /** Persisted, not yet evaluated, by seq. */
  readonly held: Map<number, Thunk>
  /** Seqs handed to the writer, not persisted yet. */
  readonly receiving: Set<number>
  gapAskedAt: number
  gapTarget: number
}

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
  target: number
}

interface PendingRead {
  readonly ts: Timestamp
  readonly keys: readonly string[]
  readonly resolve: (r: ReadResult) => void
}

interface TsRequest {
  readonly resolve: (ts: Timestamp) => void
  sentAt: number
  target: number
}

/** The exactly-once record: which thunk decided a clientTxnId, and how. A string, so stores copy nothing. */
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
  readonly role: Role
  readonly config: GroupConfig
  private readonly registry: ProcedureRegistry
  private readonly store: Store
  private readonly applier: RunApplier
  private readonly appliedListeners = new Set<(e: AppliedEvent) => void>()
  private readonly clock: Clock
  private readonly sendFn: PeerInit['send']
  private readonly log: Logger
  private readonly opts: {
    writeRetryMs: number, gossipIntervalMs: number, gapRetryMs: number, callTimeoutMs: number
    maxSkewMs: number, clockLeaseMs: number, maxValueBytes: number
  }

  private readonly minter: TimestampMinter
  private readonly wm: WatermarkTable
  private readonly majority: number
  private readonly tags: Map<string, string>
  private readonly streams = new Map<string, Stream>()

  // coordinator state
  private nextSeq = 1
  /** Smoothed time from mint to majority, so retransmission backs off when the group is slow rather than flood it. */
  private srtt = 0
  private readonly inflight = new Map<number, Inflight>()
  /** clientTxnIds this peer minted a thunk for that is not evaluated yet. */
  private readonly minted = new Map<string, Timestamp>()
  private outbox: Thunk[] = []
  private lastPromise: WatermarkEntry | undefined
  private clockLease = 0
  private leaseWriting = false
  private lastGossip = -Infinity
  private readonly observers = new Map<string, number>()

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
    this.config = init.config
    this.role = init.config.voters.includes(init.id) ? 'voter' : 'observer'
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
      maxValueBytes: init.maxValueBytes ?? C.DEFAULT_MAX_VALUE_BYTES
    }
    this.minter = new TimestampMinter(peerTag(init.id))
    this.wm = new WatermarkTable(init.config.voters, init.config.epoch)
    this.majority = Math.floor(init.config.voters.length / 2) + 1
    this.tags = new Map(init.config.voters.map(v => [v, peerTag(v)]))
    for (const v of init.config.voters) this.streams.set(v, { have: 0, evalNext: 1, held: new Map(), receiving: new Set(), gapAskedAt: -Infinity, gapTarget: 0 })
  }

  /**
   * Opens a peer on a store, recovering whatever the store persisted: the
   * evaluation cursor, unevaluated thunks, and (for a voter) its own sequence
   * and clock floor, so it never reuses a sequence number or a promise.
   */
  static async open (init: PeerInit): Promise<Peer> {
    const peer = new Peer(init)
    await peer.recover()
    return peer
  }

  private async recover (): Promise<void> {
    const cursor = await this.store.getMeta('cursor') as Cursor | undefined
    if (cursor !== undefined) {
      this.frontier = cursor.frontier
      this.lastEvaluated = cursor.last
      this.evaluatedCount = cursor.count
      this.hasher = Hasher.restore(cursor.digest)
      for (const [c, n] of Object.entries(cursor.evalNext)) {
        const s = this.streams.get(c)
        if (s !== undefined) { s.evalNext = n; s.have = n - 1 }
      }
    }
    const lease = await this.store.getMeta('clockLease')
    if (typeof lease === 'number') {
      this.clockLease = lease
      this.minter.floorMs(lease)
    }
    for (const t of await this.store.unsettled()) {
      const s = this.streams.get(t.coordinator)
      if (s === undefined || t.epoch !== this.config.epoch || t.seq < s.evalNext) continue
      s.held.set(t.seq, t)
      if (t.coordinator === this.id) {
        this.minter.floor(t.ts)
        this.nextSeq = Math.max(this.nextSeq, t.seq + 1)
        this.minted.set(t.clientTxnId, t.ts)
        // Not known to be on a majority any more: send it again until acked.
        this.inflight.set(t.seq, { thunk: t, acks: new Set([this.id]), mintedAt: this.now(), sentAt: -Infinity, tries: 0 })
      }
    }
    for (const s of this.streams.values()) while (s.held.has(s.have + 1)) s.have++
    const self = this.streams.get(this.id)
    if (self !== undefined) this.nextSeq = Math.max(this.nextSeq, self.have + 1, self.evalNext)
    this.log('recovered', { frontier: this.frontier, evaluated: this.evaluatedCount, nextSeq: this.nextSeq })
    this.kickEvaluator()
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
    switch (m.t) {
      case 'write':
        // Only voters coordinate: thunks from anyone else are refused, not stored.
        if (!this.config.voters.includes(from)) {
          this.count('write-from-non-voter')
          break
        }
        this.mergeWatermark(from, m.wm)
        for (const t of m.thunks) {
          if (t.coordinator === from) this.acceptThunk(t, from)
          else this.count('write-not-own-refused')
        }
        break
      case 'gap-rep':
        // Gaps are asked of voters only, so only a voter's answer is taken.
        if (!this.config.voters.includes(from)) {
          this.count('gap-from-non-voter')
          break
        }
        for (const t of m.thunks) this.acceptThunk(t, from)
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
        if (this.role === 'voter') this.send(from, { t: 'ts-rep', reqId: m.reqId, ts: this.minter.mint(this.now()) })
        break
      case 'ts-rep': {
        const r = this.tsRequests.get(m.reqId)
        if (r !== undefined && this.config.voters.includes(from)) {
          this.tsRequests.delete(m.reqId)
          r.resolve(m.ts)
        }
        break
      }
      case 'ck':
        this.compareCheckpoint(from, m.count, m.digest)
        break
      case 'hello':
        if (this.role === 'voter' && !this.config.voters.includes(from)) this.observers.set(from, this.now())
        break
      case 'read-rep':
        break
    }
  }

  /** Timers: retransmission, gossip, gap fill, lease renewal, timeouts. The host calls it every few ms. */
  tick (): void {
    if (this.closed) return
    const now = this.now()
    if (this.role === 'voter') {
      this.retransmit(now)
      this.renewLease()
      if (now - this.lastGossip >= this.opts.gossipIntervalMs) this.publish()
      for (const [id, seen] of this.observers) if (now - seen > C.DEFAULT_OBSERVER_TTL_MS) this.observers.delete(id)
    } else if (now - this.lastHello >= C.DEFAULT_HELLO_INTERVAL_MS) {
      this.lastHello = now
      for (const v of this.config.voters) this.send(v, { t: 'hello' })
    }
    if (now - this.lastCheckpointSent >= C.DEFAULT_CHECKPOINT_INTERVAL_MS) this.sendCheckpoint(now)
    this.askForGaps(now)
    this.retryForwards(now)
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
    for (const v of this.config.voters) this.send(v, m)
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
      this.observeTimestamp(e.svw)
      if (this.wm.merge(e)) raised = true
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
    const first = this.inflight.values().next()
    if (!first.done) {
      const t = first.value.thunk
      return { voter: this.id, epoch: this.config.epoch, svw: t.ts, count: t.seq - 1 }
    }
    const svw = this.minter.mint(this.now())
    // A promise must survive a crash: only promise within the persisted clock lease.
    if (timestampMs(svw) >= this.clockLease) {
      this.renewLease()
      return this.lastPromise
    }
    this.lastPromise = { voter: this.id, epoch: this.config.epoch, svw, count: this.nextSeq - 1 }
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
    this.wm.merge(own)
    return [own]
  }

  /** Gossips this peer's watermark view to every voter and known observer. */
  private publish (): void {
    if (this.role !== 'voter') return
    this.lastGossip = this.now()
    this.wmDirty = false
    const msg: Message = { t: 'wm', wm: this.watermarkEntries() }
    for (const v of this.config.voters) this.send(v, msg)
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
          for (const v of this.config.voters) this.send(v, msg)
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
    let thunkInit: { procedure: string, hash: string, reads: readonly string[], writes: readonly string[] }
    try {
      const proc = resolveProcedure(this.registry, req.procedure, req.hash)
      checkValue(req.args, this.opts.maxValueBytes)
      thunkInit = { procedure: proc.name, hash: proc.hash, ...declaredKeys(proc, req.args) }
    } catch (err) {
      this.count('submit-refused')
      this.settleWaiter(waiter, req.clientTxnId, undefined, err as Error)
      return
    }
    if (this.role !== 'voter') {
      this.addWaiter(req.clientTxnId, waiter)
      this.forward(req)
      return
    }
    this.addWaiter(req.clientTxnId, waiter)
    if (this.minted.has(req.clientTxnId)) return
    // Exactly once: a clientTxnId already decided answers with its first outcome.
    void this.store.txnRecords([req.clientTxnId]).then(([found]) => {
      if (this.closed) return
      if (found !== undefined) {
        const record = decodeRecord(found)
        this.resolveWaiters(req.clientTxnId, toResult(record.ts, record.outcome, true))
        return
      }
      if (this.minted.has(req.clientTxnId) || !this.waiters.has(req.clientTxnId)) return
      this.mint(req, thunkInit)
    }, err => { this.fail(err) })
  }

  private mint (req: SubmitRequest, init: { procedure: string, hash: string, reads: readonly string[], writes: readonly string[] }): void {
    const thunk: Thunk = {
      ts: this.minter.mint(this.now()),
      epoch: this.config.epoch,
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
    if (this.role !== 'voter' || epoch !== this.config.epoch || !this.config.voters.includes(from)) {
      this.count('ack-refused')
      return
    }
    const firstBefore = this.inflight.keys().next().value
    const now = this.now()
    for (const seq of seqs) {
      const e = this.inflight.get(seq)
      if (e === undefined) continue
      e.acks.add(from)
      if (e.acks.size >= this.majority) {
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
      for (const v of this.config.voters) {
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

  /** Stores a thunk from its coordinator (or a gap fill) without checks on its content: S-phase. */
  private acceptThunk (thunk: Thunk, from: string): void {
    const s = this.streams.get(thunk.coordinator)
    if (s === undefined || thunk.epoch !== this.config.epoch || this.tags.get(thunk.coordinator) !== thunk.ts.slice(12, 28)) {
      this.count('thunk-refused')
      this.log('thunk-refused', { from, coordinator: thunk.coordinator, epoch: thunk.epoch })
      return
    }
    if (thunk.coordinator !== this.id) this.observeTimestamp(thunk.ts)
    if (thunk.seq < s.evalNext || s.held.has(thunk.seq)) {
      // Already durable here: the coordinator missed our ack.
      if (this.role === 'voter' && from === thunk.coordinator) this.send(from, { t: 'ack', epoch: thunk.epoch, seqs: [thunk.seq], wm: this.watermarkEntries() })
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
        for (const thunk of batch) {
          const s = this.streams.get(thunk.coordinator) as Stream
          s.receiving.delete(thunk.seq)
          if (thunk.seq < s.evalNext) continue
          s.held.set(thunk.seq, thunk)
          while (s.held.has(s.have + 1)) s.have++
          if (thunk.coordinator === this.id) {
            const e = this.inflight.get(thunk.seq)
            if (e !== undefined) {
              e.acks.add(this.id)
              e.sentAt = this.now()
              if (e.acks.size >= this.majority) this.inflight.delete(thunk.seq)
            }
            this.outbox.push(thunk)
          } else if (this.role === 'voter') {
            let list = acks.get(thunk.coordinator)
            if (list === undefined) { list = []; acks.set(thunk.coordinator, list) }
            list.push(thunk.seq)
          }
        }
        if (acks.size > 0) {
          const wm = this.watermarkEntries()
          for (const [c, seqs] of acks) this.send(c, { t: 'ack', epoch: this.config.epoch, seqs, wm })
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
    for (const [c, s] of this.streams) {
      const need = this.wm.get(c)?.count ?? 0
      if (s.have >= need || now - s.gapAskedAt < this.opts.gapRetryMs) continue
      let from = s.have + 1
      while (from <= need && (s.held.has(from) || s.receiving.has(from))) from++
      if (from > need) continue
      const to = Math.min(need, from + C.DEFAULT_GAP_BATCH - 1)
      s.gapAskedAt = now
      // Ask the coordinator first, then every other voter in turn.
      const candidates = [c, ...this.config.voters.filter(v => v !== c)].filter(v => v !== this.id)
      if (candidates.length === 0) continue
      const target = candidates[s.gapTarget++ % candidates.length] as string
      this.count('gap-req')
      this.send(target, { t: 'gap-req', coordinator: c, epoch: this.config.epoch, from, to })
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
   * (a merge of the coordinators' sequences), below the watermark, and only
   * while no coordinator may still have an unseen thunk below the candidate.
   */
  private collectRun (max: number): { run: Thunk[], blocked: boolean, next: Timestamp | undefined } {
    const V = this.wm.value
    const run: Thunk[] = []
    while (run.length < max) {
      let best: Thunk | undefined
      let bestStream: Stream | undefined
      let blocked = false
      for (const [c, s] of this.streams) {
        if (s.evalNext <= s.have) {
          const t = s.held.get(s.evalNext) as Thunk
          if (best === undefined || t.ts < best.ts) { best = t; bestStream = s }
        } else if (s.evalNext <= (this.wm.get(c)?.count ?? 0)) {
          blocked = true
        }
      }
      if (blocked) return { run, blocked: true, next: undefined }
      if (best === undefined || best.ts >= V) return { run, blocked: false, next: best?.ts }
      ;(bestStream as Stream).evalNext++
      run.push(best)
    }
    return { run, blocked: true, next: undefined }
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
          const V = this.wm.value
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
    const evalNext: Record<string, number> = {}
    for (const [c, s] of this.streams) evalNext[c] = s.evalNext
    const base: Cursor = { frontier: this.frontier, last: this.lastEvaluated, count: this.evaluatedCount, digest: this.hasher.state, evalNext }
    const applied = await this.applier(run, base)
    if (this.closed) return
    this.hasher = Hasher.restore(applied.cursor.digest)
    this.lastEvaluated = applied.cursor.last
    this.evaluatedCount = applied.cursor.count
    this.frontier = maxTimestamp(this.frontier, applied.cursor.frontier)
    for (let i = 0; i < run.length; i++) {
      const thunk = run[i] as Thunk
      const s = this.streams.get(thunk.coordinator) as Stream
      s.held.delete(thunk.seq)
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
    const ts = this.role === 'voter' ? this.minter.mint(this.now()) : await this.requestTimestamp(options)
    return await new Promise<ReadResult>((resolve, reject) => {
      const entry: PendingRead = { ts, keys, resolve }
      this.pendingReads.push(entry)
      this.guard(options, reject, () => { this.pendingReads = this.pendingReads.filter(r => r !== entry) })
      this.serveReads()
    })
  }

  private requestTimestamp (options: CallOptions): Promise<Timestamp> {
    return new Promise<Timestamp>((resolve, reject) => {
      const reqId = `${this.id}:ts:${++this.reqCounter}`
      const r: TsRequest = { resolve, sentAt: this.now(), target: this.reqCounter }
      this.tsRequests.set(reqId, r)
      this.sendTsRequest(reqId, r)
      this.guard(options, reject, () => { this.tsRequests.delete(reqId) })
    })
  }

  private sendTsRequest (reqId: string, r: TsRequest): void {
    const voters = this.config.voters
    r.sentAt = this.now()
    this.send(voters[r.target++ % voters.length] as string, { t: 'ts-req', reqId })
  }

  /**
   * Rejects through `reject` on abort or timeout. The timeout runs on the
   * injected clock, checked by tick(), so simulated time governs it.
   */
  private guard (options: CallOptions, reject: (e: Error) => void, cleanup: () => void): void {
    const deadline = this.now() + (options.timeoutMs ?? this.opts.callTimeoutMs)
    const check = (): boolean => {
      if (options.signal?.aborted === true) { cleanup(); reject(new AbortError('aborted')); return true }
      if (this.now() >= deadline) { cleanup(); reject(new QuorumUnavailableError('timed out waiting for the watermark')); return true }
      if (this.closed) { cleanup(); reject(new PeerClosedError('peer closed')); return true }
      return false
    }
    options.signal?.addEventListener('abort', () => { check() }, { once: true })
    this.guards.add(check)
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
    const f: Forward = { req, sentAt: this.now(), target: this.reqCounter++ }
    this.forwards.set(req.clientTxnId, f)
    this.sendForward(f)
  }

  private sendForward (f: Forward): void {
    const voters = this.config.voters
    f.sentAt = this.now()
    this.send(voters[f.target++ % voters.length] as string, { t: 'submit', req: f.req, replyTo: this.id })
  }

  private retryForwards (now: number): void {
    const every = this.opts.writeRetryMs * 5
    for (const f of this.forwards.values()) if (now - f.sentAt >= every) this.sendForward(f)
    for (const [reqId, r] of this.tsRequests) if (now - r.sentAt >= every) this.sendTsRequest(reqId, r)
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

  /** The procedure hash a client must send for `procedure` (undefined if unknown). */
  procedureHash (procedure: string): string | undefined {
    return this.registry.procedures.get(procedure)?.hash
  }

  status (): PeerStatus {
    let unevaluated = 0
    for (const s of this.streams.values()) unevaluated += s.held.size
    return {
      id: this.id,
      role: this.role,
      epoch: this.config.epoch,
      watermark: this.wm.value,
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

  /** Per-coordinator sequence positions (tests and quiescence checks). */
  sequences (): Record<string, { have: number, evalNext: number }> {
    const out: Record<string, { have: number, evalNext: number }> = {}
    for (const [c, s] of this.streams) out[c] = { have: s.have, evalNext: s.evalNext }
    return out
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
