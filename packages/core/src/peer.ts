import { storeApplier } from './apply.js'
import * as C from './constants.js'
import { AbortError, PeerClosedError, QuorumUnavailableError } from './errors.js'
import type { Message } from './messages.js'
import type { ProcedureRegistry } from './procedures.js'
import { handleSubmit } from './protocol/coordinator.js'
import { dispatch, receive, tick } from './protocol/dispatch.js'
import type { AppliedEvent, Clock, EpochEvent, Logger, PeerEnv } from './protocol/env.js'
import { kickEvaluator } from './protocol/evaluator.js'
import { serveRead } from './protocol/reads.js'
import { forceProposal } from './protocol/reconfig/proposer.js'
import { recover } from './protocol/recover.js'
import { guard, type CallOptions } from './protocol/requests.js'
import { isSealed, newPeerState, roleOf, type Divergence, type PeerState, type Waiter } from './protocol/state.js'
import type { RunApplier } from './apply.js'
import type { Store, StoreSnapshot } from './store.js'
import { TS_ZERO, type Timestamp } from './timestamp.js'
import type { GroupConfig, ReadConsistency, ReadResult, Role, SubmitRequest, TxnResult } from './types.js'
import type { Value } from './value.js'

export type { AppliedEvent, CallOptions, Clock, Divergence, EpochEvent, Logger }

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


/**
 * One member of a Tideline group: the driver of the protocol handlers in
 * `protocol/`. Every peer runs the same code: a voter also coordinates
 * (mints timestamps, quorum-writes thunks, publishes a watermark entry);
 * every peer replicates, evaluates in timestamp order and serves reads.
 * Time, network and storage are injected; the peer does nothing between
 * calls except finish its own store writes.
 */
export class Peer {
  readonly id: string
  private readonly state: PeerState
  private readonly env: PeerEnv

  private constructor (init: PeerInit) {
    this.id = init.id
    const maxValueBytes = init.maxValueBytes ?? C.DEFAULT_MAX_VALUE_BYTES
    this.state = newPeerState(init.id, init.config, init.clock.now())
    this.env = {
      registry: init.registry,
      store: init.store,
      applier: init.applier ?? storeApplier({ store: init.store, registry: init.registry, maxValueBytes }),
      clock: init.clock,
      transport: init.send,
      deliverToSelf: m => { queueMicrotask(() => { if (!this.state.closed) dispatch(this.state, this.env, this.id, m) }) },
      log: init.logger ?? (() => {}),
      options: {
        writeRetryMs: init.writeRetryMs ?? C.DEFAULT_WRITE_RETRY_MS,
        gossipIntervalMs: init.gossipIntervalMs ?? C.DEFAULT_GOSSIP_INTERVAL_MS,
        gapRetryMs: init.gapRetryMs ?? C.DEFAULT_GAP_RETRY_MS,
        callTimeoutMs: init.callTimeoutMs ?? C.DEFAULT_CALL_TIMEOUT_MS,
        maxSkewMs: init.maxSkewMs ?? C.DEFAULT_MAX_SKEW_MS,
        clockLeaseMs: init.clockLeaseMs ?? C.DEFAULT_CLOCK_LEASE_MS,
        maxValueBytes,
        suspectMs: init.suspectMs ?? C.DEFAULT_SUSPECT_MS,
        proposeTimeoutMs: init.proposeTimeoutMs ?? C.DEFAULT_PROPOSE_TIMEOUT_MS,
        maxVoters: init.maxVoters ?? C.DEFAULT_MAX_VOTERS,
        candidate: init.candidate ?? false,
        admitVoter: init.admitVoter ?? (() => false)
      },
      appliedListeners: new Set(),
      epochListeners: new Set(),
      divergenceListeners: new Set()
    }
  }

  /**
   * Opens a peer on a store, recovering whatever the store persisted: the
   * installed epochs, the evaluation cursor, unevaluated thunks, its Paxos
   * promises, and (for a voter) its own sequence and clock floor, so it never
   * reuses a sequence number or a promise.
   */
  static async open (init: PeerInit): Promise<Peer> {
    const peer = new Peer(init)
    await recover(peer.state, peer.env, init.config)
    return peer
  }

  /** The current epoch's configuration (it changes when an epoch change is installed). */
  get config (): GroupConfig {
    return this.state.config
  }

  get role (): Role {
    return roleOf(this.state)
  }

  /**
   * Handles a message from a peer. Malformed or out-of-role input is dropped
   * and counted; nothing a peer sends can throw out of here.
   */
  receive (from: string, raw: unknown): void {
    receive(this.state, this.env, from, raw)
  }

  /** Timers: retransmission, gossip, gap fill, lease renewal, failure detection, timeouts. The host calls it every few ms. */
  tick (): void {
    tick(this.state, this.env)
  }

  /** Calls `listener` once this replica learns another one reached a different digest (a non-deterministic procedure, or a bug). */
  onDivergence (listener: (d: Divergence) => void): () => void {
    this.env.divergenceListeners.add(listener)
    return () => { this.env.divergenceListeners.delete(listener) }
  }

  /**
   * Submits a transaction through this peer and resolves with its evaluated
   * result. Resubmitting the same clientTxnId never applies it twice.
   */
  submit (req: SubmitRequest, options: CallOptions = {}): Promise<TxnResult> {
    const s = this.state
    return new Promise<TxnResult>((resolve, reject) => {
      if (options.signal?.aborted === true) { reject(new AbortError('aborted')); return }
      const deadline = this.env.clock.now() + (options.timeoutMs ?? this.env.options.callTimeoutMs)
      const waiter: Waiter = { kind: 'local', resolve, reject, deadline }
      options.signal?.addEventListener('abort', () => {
        const list = s.waiters.get(req.clientTxnId)
        if (list === undefined || !list.includes(waiter)) return
        s.waiters.set(req.clientTxnId, list.filter(w => w !== waiter))
        reject(new AbortError('aborted'))
      }, { once: true })
      handleSubmit(s, this.env, req, waiter)
    })
  }

  /** A read-only transaction over `keys`. */
  read (keys: readonly string[], options: ReadOptions = {}): Promise<ReadResult> {
    return serveRead(this.state, this.env, keys, options.consistency ?? 'strict', options)
  }

  /**
   * Calls `listener` after every evaluated run with the keys it wrote (live
   * queries re-read those). Returns the unsubscribe function.
   */
  onApplied (listener: (e: AppliedEvent) => void): () => void {
    this.env.appliedListeners.add(listener)
    return () => { this.env.appliedListeners.delete(listener) }
  }

  /** Calls `listener` after this peer installed a new epoch. Returns the unsubscribe function. */
  onEpoch (listener: (e: EpochEvent) => void): () => void {
    this.env.epochListeners.add(listener)
    return () => { this.env.epochListeners.delete(listener) }
  }

  /**
   * Starts an epoch change now (with the voters this peer would want), rather
   * than when the failure detector calls for one. Only a voter can; tests and
   * operators use it, and two voters calling it at once must still agree.
   */
  requestEpochChange (): void {
    if (this.role !== 'voter' || this.state.closed) return
    forceProposal(this.state)
  }

  /**
   * Leaves the voter set gracefully: proposes the next epoch without this
   * peer and resolves once it is installed (this peer is then an observer
   * and keeps no one waiting). Rejects after `timeoutMs` if no majority agreed.
   */
  async leave (options: CallOptions = {}): Promise<void> {
    const s = this.state
    if (this.role !== 'voter') return
    if (s.current.voters.length === 1) throw new QuorumUnavailableError('the only voter cannot leave its group')
    s.leaving = true
    s.current.nextProposeAt = -Infinity
    s.current.changeWantedSince = -Infinity
    await new Promise<void>((resolve, reject) => {
      let release = (): void => {}
      const off = this.onEpoch(e => {
        if (!e.voters.includes(this.id)) { off(); release(); resolve() }
      })
      release = guard(s, this.env, options, err => { off(); reject(err) }, () => { off() })
    })
  }

  /** The procedure hash a client must send for `procedure` (undefined if unknown). */
  procedureHash (procedure: string): string | undefined {
    return this.env.registry.procedures.get(procedure)?.hash
  }

  status (): PeerStatus {
    const s = this.state
    let unevaluated = 0
    for (const record of s.epochs.values()) for (const stream of record.streams.values()) unevaluated += stream.held.size
    return {
      id: this.id,
      role: this.role,
      epoch: s.current.epoch,
      voters: s.current.voters,
      sealed: isSealed(s),
      watermark: s.current.wm.value,
      frontier: s.frontier,
      lastEvaluated: s.lastEvaluated,
      evaluated: s.evaluatedCount,
      digest: s.hasher.digest(),
      inflight: s.current.coordinator.inflight.size,
      unevaluated,
      failed: s.failure,
      diverged: s.divergence,
      counters: { ...s.counters }
    }
  }

  /** Per-coordinator sequence positions in the current epoch (tests and quiescence checks). */
  sequences (): Record<string, { have: number, evalNext: number }> {
    const out: Record<string, { have: number, evalNext: number }> = {}
    for (const [c, stream] of this.state.current.streams) out[c] = { have: stream.have, evalNext: stream.evalNext }
    return out
  }

  /** Whether every epoch before the current one is evaluated through its cut. */
  get evaluatingCurrentEpoch (): boolean {
    return this.state.evaluatingEpoch === this.state.current.epoch
  }

  /**
   * A consistent snapshot of this replica's evaluated state: values, exactly-once
   * records and the evaluation cursor, at the cursor's frontier. A new or
   * far-behind replica imports it into its store, opens, and fetches only the
   * thunks after it.
   */
  async exportSnapshot (): Promise<StoreSnapshot> {
    const s = this.state
    // Evaluation must not land a settlement between reading the cursor and the state.
    while (s.evaluating) await new Promise<void>(resolve => { queueMicrotask(resolve) })
    s.evaluating = true
    try {
      const cursor = await this.env.store.getMeta('cursor') as { frontier: Timestamp } | undefined
      const snap = await this.env.store.exportSnapshot(cursor?.frontier ?? TS_ZERO)
      // Only the replicated state travels: leases and other per-peer metadata stay home.
      return { ...snap, meta: snap.meta.filter(([name]) => name === 'cursor') }
    } finally {
      s.evaluating = false
      kickEvaluator(s, this.env)
    }
  }

  /** The current value of every key below this replica's frontier. */
  async snapshot (): Promise<Array<[string, Value]>> {
    return await this.env.store.entries(this.state.frontier)
  }

  /** Stops the peer: no more messages, pending calls fail with PeerClosedError. */
  async close (): Promise<void> {
    const s = this.state
    if (s.closed) return
    s.closed = true
    const e = new PeerClosedError('peer closed')
    for (const [, list] of s.waiters) for (const w of list) if (w.kind === 'local') w.reject(e)
    s.waiters.clear()
    for (const check of s.guards) check()
    s.guards.clear()
  }

  /** Stops without touching the store (simulated crash: in-memory state is simply gone). */
  crash (): void {
    this.state.closed = true
  }
}
