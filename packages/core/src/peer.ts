import { carrySigning } from './batch-checks.js'
import { storeApplier, type RunApplier } from './apply.js'
import * as C from './constants.js'
import { AbortError, InvalidArgumentError, InvariantError } from './errors.js'
import { validateMessage } from './validate.js'
import type { Message } from './messages.js'
import { peerOptions, type AppliedEvent, type CallOptions, type Clock, type EpochEvent, type Logger, type PeerInit, type ReadOptions } from './peer-init.js'
import { peerStatus, sequencesOf, type PeerStatus } from './peer-status.js'
import type { Divergence, Effect, Input } from './protocol/effects.js'
import { errorInfo } from './protocol/emit.js'
import { damagedInput } from './protocol/damage.js'
import { invariants } from './protocol/invariants.js'
import { checkRangeRead, forwardRead, isKeyList, readValues } from './read-values.js'
import type { RangeRead } from './protocol/read-state.js'
import { loadPersisted, restore } from './protocol/recover.js'
import { newPeerState, roleOf, type PeerState } from './protocol/state.js'
import { step } from './protocol/step.js'
import { nextDue } from './protocol/schedule.js'
import { META, decisionKey, decisionValue, metaValue } from './protocol/meta.js'
import { PeerSnapshots } from './peer-snapshots.js'
import { signCall } from './caller.js'
import type { DecisionSigner } from './protocol/reconfig/proof.js'
import type { Store, StoreSnapshot } from './store.js'
import { TS_ZERO } from './timestamp.js'
import type { GroupConfig, Revocation, ReadResult, Role, SubmitRequest, TxnResult } from './types.js'
import type { Value } from './value.js'

export type { AppliedEvent, CallOptions, Clock, Divergence, EpochEvent, Logger, PeerInit, PeerStatus, ReadOptions }

interface PendingCall {
  readonly resolve: (value: unknown) => void
  readonly reject: (err: Error) => void
  readonly release: () => void
}

/**
 * One member of a Tideline group: the driver of the protocol's `step`. Every
 * peer runs the same code: a voter also coordinates (mints timestamps,
 * quorum-writes thunks, publishes a watermark entry); every peer
 * replicates, evaluates in timestamp order and serves reads.
 *
 * The driver feeds `step` one input at a time (messages, ticks, API calls,
 * and the completions of store operations) and carries out the effects it
 * returns, in order. The ordering contract: a message that may only leave
 * once something is durable is never in the same batch of effects as that
 * write. It is produced by the step that handles the write's completion
 * (acks by `batches-persisted`, a coordinator's own writes to the others by
 * its `batches-persisted`, Paxos answers by `acceptor-persisted`, promises
 * by `lease-persisted`, an epoch's start by `decision-persisted`). So the
 * driver sends at once, and starts store operations in the order given.
 */
export class Peer {
  readonly id: string
  private readonly state: PeerState
  private readonly store: Store
  private readonly applier: RunApplier
  private readonly clock: Clock
  private readonly transport: (to: string, message: Message) => void
  private readonly log: Logger
  private readonly checkInvariants: boolean
  private readonly selfTimed: boolean
  private readonly signer: DecisionSigner | undefined
  private readonly invite: string | undefined
  private readonly connect: (peer: string, addrs: readonly string[]) => void
  private readonly disconnect: (peer: string) => void
  /** The armed timer (selfTimed) and the time it fires at. */
  private timer: ReturnType<typeof setTimeout> | undefined
  private armedAt = Infinity
  private readonly calls = new Map<number, PendingCall>()
  /** The readers of exports this voter streams and the snapshot it stages. */
  private readonly snapshots: PeerSnapshots
  private nextCall = 0
  private readonly appliedListeners = new Set<(e: AppliedEvent) => void>()
  private readonly epochListeners = new Set<(e: EpochEvent) => void>()
  private readonly divergenceListeners = new Set<(d: Divergence) => void>()

  private constructor (init: PeerInit) {
    this.id = init.id
    const maxValueBytes = init.maxValueBytes ?? C.DEFAULT_MAX_VALUE_BYTES
    this.store = init.store
    this.snapshots = new PeerSnapshots(init.store)
    const signer = init.signer
    if (init.config.signedCalls === true && signer === undefined) throw new TypeError(`group ${init.config.groupId} runs only signed calls: this peer needs a signer to check them`)
    this.applier = init.applier ?? storeApplier({ store: init.store, registry: init.registry, maxValueBytes, ...(init.readInvite === undefined ? {} : { readInvite: init.readInvite }), ...(signer === undefined ? {} : { verifyCall: (peer: string, statement: Uint8Array, sig: Uint8Array) => signer.verify(peer, statement, sig) }) })
    this.clock = init.clock
    this.transport = init.send
    this.log = init.logger ?? (() => {})
    this.checkInvariants = init.checkInvariants ?? false
    this.selfTimed = init.selfTimed ?? false
    this.signer = init.signer
    this.invite = init.invite
    this.connect = init.tree?.connect ?? (() => {})
    this.disconnect = init.tree?.disconnect ?? (() => {})
    this.state = newPeerState({ id: init.id, config: init.config, registry: init.registry, options: peerOptions(init), now: init.clock.now() })
  }

  /**
   * Opens a peer on a store, recovering whatever the store persisted: the
   * installed epochs, the evaluation cursor, unevaluated thunks, its Paxos
   * promises, and (for a voter) its own sequence and clock floor, so it never
   * reuses a sequence number or a promise.
   */
  static async open (init: PeerInit): Promise<Peer> {
    const peer = new Peer(init)
    const persisted = await loadPersisted(init.store, init.config)
    peer.state.now = init.clock.now()
    restore(peer.state, persisted, init.config)
    // The store checked against the cursor's state digest before anything is served from it (O(state) time, once;
    // read a part at a time); a damaged record found on the way heals the replica as a wrong digest would.
    if (persisted.cursor !== undefined) {
      const scrubbed = await PeerSnapshots.scrub(init.store, peer.state.frontier, C.SNAPSHOT_CHUNK_BYTES).then((state): Input => ({ t: 'scrubbed', state }), err => damagedInput(err))
      peer.state.now = init.clock.now()
      peer.input(scrubbed)
    }
    peer.input({ t: 'start' })
    return peer
  }

  /** Steps the protocol with one input and carries out its effects. */
  private input (input: Input): void {
    if (this.state.phase === 'closed' && input.t !== 'close') return
    const effects = step(this.state, input, this.clock.now())
    if (this.checkInvariants) {
      const broken = invariants(this.state)
      if (broken.length > 0) throw new InvariantError(`peer ${this.id} after ${input.t}: ${broken.join('; ')}`)
    }
    this.carryOut(effects)
    if (this.selfTimed) this.arm()
  }

  /** Arms the one timer for the next due timeout, unless it is armed for that time or sooner. */
  private arm (): void {
    const due = nextDue(this.state)
    if (due === Infinity) {
      this.disarm()
      return
    }
    if (this.timer !== undefined && this.armedAt <= due) return
    this.disarm()
    this.armedAt = due
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.armedAt = Infinity
      this.input({ t: 'tick' })
    }, Math.max(0, due - this.clock.now()))
    // A host with nothing else to do may exit: the peer's timer alone does not keep it alive.
    if (typeof this.timer === 'object' && 'unref' in this.timer) this.timer.unref()
  }

  private disarm (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.armedAt = Infinity
  }

  /** When the protocol next has a timeout to run (host clock; Infinity once closed). A host that ticks may sleep until then. */
  nextDue (): number {
    return nextDue(this.state)
  }

  private carryOut (effects: readonly Effect[]): void {
    for (const e of effects) {
      switch (e.t) {
        case 'send': this.transport(e.to, e.message); break
        case 'persist': this.complete(this.store.write(e.batch).then(() => e.done)); break
        case 'apply':
          // A partitioned run's forwarded reads go out before the run is written (partitions.ts, onRunForwards).
          this.complete(this.applier(e.run, e.base, e.rules, e.plan, forwards => { if (e.plan !== undefined) this.complete(Promise.resolve({ t: 'run-forwards', run: e.run, plan: e.plan, forwards })) }).then((applied): Input => ({ t: 'run-applied', run: e.run, applied, ...(e.plan === undefined ? {} : { plan: e.plan }) }), err => damagedInput(err, { run: e.run })))
          break
        case 'read-values': this.complete(readValues(this.store, e)); break
        case 'read-forward': this.complete(forwardRead(this.store, e)); break
        case 'read-batches':
          this.complete(this.store.batchRange(e.coordinator, e.epoch, e.from, e.last).then(r => ({ t: 'batches-read' as const, replyTo: e.replyTo, coordinator: e.coordinator, epoch: e.epoch, from: e.from, batches: r.batches, damaged: r.damaged, ...(e.h === undefined ? {} : { h: e.h }) })))
          break
        case 'read-decision':
          this.complete(this.store.getMeta(decisionKey(e.epoch)).then(v => { const d = decisionValue(v); return { t: 'decision-read' as const, replyTo: e.replyTo, change: d?.change, proof: d?.proof } }))
          break
        case 'sign-decision': case 'verify-decision': case 'sign-batch': case 'verify-batches': case 'sign-entries': case 'verify-entries': this.complete(Promise.resolve(carrySigning(this.signer, this.state.config.groupId, e))); break
        case 'connect': this.connect(e.peer, e.addrs); break
        case 'disconnect': this.disconnect(e.peer); break
        case 'gc': this.complete(this.store.gc(e.horizon, e.records === undefined ? { limit: e.limit } : { records: e.records, limit: e.limit }).then(result => ({ t: 'gc-done' as const, horizon: e.horizon, result }))); break
        case 'export-snapshot': case 'read-snapshot': case 'close-snapshot': case 'stage-snapshot': case 'import-snapshot': case 'drop-snapshot':
          this.complete(this.snapshots.carryOut(e))
          break
        case 'scrub':
          // Evaluation goes on meanwhile: a version the read needs may be gone (too old), which ends this scrub, not the peer.
          this.complete(PeerSnapshots.scrub(this.store, e.at, C.SNAPSHOT_CHUNK_BYTES).then((): Input => ({ t: 'scrub-done' }), err => (err as Error).name === 'SnapshotTooOldError' ? { t: 'scrub-done' } : damagedInput(err)))
          break
        case 'settle': this.settle(e.call, e.value, e.error); break
        case 'later': queueMicrotask(() => { this.input(e.input) }); break
        case 'event': this.emit(e.event); break
        case 'log': this.log(e.event, e.detail); break
      }
    }
  }

  /** Feeds a store operation's result back as an input (a damaged record heals the replica; any other failure stops the peer). */
  private complete (done: Promise<Input | undefined>): void {
    const failed = (err: unknown): Input => (err as Error).name === 'StoreCorruptionError' ? damagedInput(err) : { t: 'store-failed', error: errorInfo(err) }
    done.then(input => { if (input !== undefined) this.input(input) }, (err: unknown) => { this.input(failed(err)) })
  }

  private emit (event: Extract<Effect, { t: 'event' }>['event']): void {
    if (event.t === 'applied') for (const l of this.appliedListeners) l(event.reset === true ? { written: [], frontier: event.frontier, reset: true } : { written: event.written, frontier: event.frontier })
    else if (event.t === 'epoch') for (const l of this.epochListeners) l({ epoch: event.epoch, voters: event.voters, aborted: event.aborted })
    else for (const l of this.divergenceListeners) l(event.divergence)
  }

  /** Registers a local call; its `settle` effect resolves or rejects the promise. */
  private call<T> (options: CallOptions, start: (call: number) => Input): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (options.signal?.aborted === true) { reject(new AbortError('aborted')); return }
      const call = ++this.nextCall
      const onAbort = (): void => { this.input({ t: 'abort', call }) }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.calls.set(call, { resolve: resolve as (v: unknown) => void, reject, release: () => { options.signal?.removeEventListener('abort', onAbort) } })
      this.input(start(call))
    })
  }

  private settle (call: number, value: unknown, error: Error | undefined): void {
    const pending = this.calls.get(call)
    if (pending === undefined) return
    this.calls.delete(call)
    pending.release()
    if (error !== undefined) pending.reject(error)
    else pending.resolve(value)
  }

  /** The current epoch's configuration (it changes when an epoch change is installed). */
  get config (): GroupConfig {
    return this.state.config
  }

  get role (): Role {
    return roleOf(this.state)
  }

  /** Handles a message from a peer. Malformed or out-of-role input is dropped and counted; nothing a peer sends can throw out of here. */
  receive (from: string, raw: unknown): void {
    this.input({ t: 'receive', from, message: raw })
  }

  /** Timers: retransmission, gossip, gap fill, lease renewal, failure detection, timeouts. The host calls it every few ms. */
  tick (): void {
    this.input({ t: 'tick' })
  }

  /** Calls `listener` once this replica learns another one reached a different digest (a non-deterministic procedure, or a bug). */
  onDivergence (listener: (d: Divergence) => void): () => void {
    this.divergenceListeners.add(listener)
    return () => { this.divergenceListeners.delete(listener) }
  }

  /** Submits a transaction through this peer and resolves with its evaluated result. Resubmitting the same clientTxnId never applies it twice. */
  submit (req: SubmitRequest, options: CallOptions = {}): Promise<TxnResult> {
    // In a group of signed calls this peer signs its own (unless the caller brought a signature).
    if (this.state.config.signedCalls === true && req.caller === undefined && this.signer !== undefined) {
      return signCall(this.state.config.groupId, this.id, this.signer, { ...req, firstAt: req.firstAt ?? Math.floor(this.clock.now()) }, this.invite).then(signed => this.submit(signed, options))
    }
    return this.call<TxnResult>(options, call => ({ t: 'submit', call, req, timeoutMs: options.timeoutMs }))
  }

  /** A read-only transaction over `keys`, or (`{ range }`) over the live keys of a range, in order (`entries`). */
  read (keys: readonly string[] | RangeRead, options: ReadOptions = {}): Promise<ReadResult> {
    let what: { keys: readonly string[], range?: RangeRead }
    try {
      what = isKeyList(keys) ? { keys } : { keys: [], range: checkRangeRead(keys) }
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    return this.call<ReadResult>(options, call => ({ t: 'read', call, ...what, consistency: options.consistency ?? 'strict', timeoutMs: options.timeoutMs }))
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
   * Starts an epoch change now (with the voters this peer would want), not when the failure detector
   * calls for one. Only a voter can; two voters calling it at once must still agree.
   */
  requestEpochChange (): void {
    this.input({ t: 'request-epoch-change' })
  }

  /**
   * Whether this peer asks to be voted in while it is not a voter (PeerInit `candidate`). Asking again
   * calls off a leave under way and, once one is done, asks to be voted back in (a tab voter shown again).
   */
  setCandidate (candidate: boolean): void {
    this.input({ t: 'candidacy', candidate })
  }

  /**
   * Leaves the voter set gracefully: proposes the next epoch without this peer and resolves once it is
   * installed (it is then an observer). Rejects after `timeoutMs` if no majority agreed.
   */
  async leave (options: CallOptions = {}): Promise<void> {
    await this.call<void>(options, call => ({ t: 'leave', call, timeoutMs: options.timeoutMs }))
  }

  /**
   * Revokes members (peer ids) and invites (hex SHA-256 of the signed body) together in the next epoch change
   * (a voter's own; any other member's goes to its home voter, which takes it from an admin only); resolves
   * with that epoch once installed (see reconfig/revoke.ts). Rejects after `timeoutMs`.
   */
  async revoke (targets: readonly Revocation[], options: CallOptions = {}): Promise<number> {
    try {
      // It goes into decisions every peer checks: it must pass as a request would.
      validateMessage({ t: 'revoke', reqId: 'local', targets })
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message)
    }
    return await this.call<number>(options, call => ({ t: 'revoke', call, targets, timeoutMs: options.timeoutMs }))
  }

  /** The procedure hash a client must send for `procedure` (undefined if unknown). */
  procedureHash (procedure: string): string | undefined {
    return this.state.registry.procedures.get(procedure)?.hash
  }

  status (): PeerStatus {
    return peerStatus(this.state)
  }

  /** Per-coordinator sequence positions in the current epoch (tests and quiescence checks). */
  sequences (): Record<string, { have: number, evalNext: number }> {
    return sequencesOf(this.state)
  }

  /** Whether every epoch before the current one is evaluated through its cut. */
  get evaluatingCurrentEpoch (): boolean {
    return this.state.evaluatingEpoch === this.state.current.epoch
  }

  /**
   * A consistent snapshot of this replica's evaluated state (values, exactly-once records, the cursor, at
   * its frontier). A new or far-behind replica imports it, opens, and fetches only the thunks after it.
   */
  async exportSnapshot (): Promise<StoreSnapshot> {
    // Evaluation must not land a settlement between reading the cursor and the state.
    while (this.state.evaluation !== 'idle') await new Promise<void>(resolve => { queueMicrotask(resolve) })
    this.input({ t: 'hold-evaluation' })
    try {
      const cursor = metaValue('cursor', await this.store.getMeta(META.cursor))
      const snap = await this.store.exportSnapshot(cursor?.frontier ?? TS_ZERO)
      // The replicated state travels (the cursor, the configuration, the decisions from the cursor's epoch on); per-peer metadata stays home.
      const keep = new Set<string>([META.cursor, META.config])
      for (let e = cursor?.epoch ?? 0; e <= this.state.current.epoch; e++) keep.add(decisionKey(e))
      return { ...snap, meta: snap.meta.filter(([name]) => keep.has(name)) }
    } finally {
      this.input({ t: 'release-evaluation' })
    }
  }

  /** The current value of every key below this replica's frontier. */
  async snapshot (): Promise<Array<[string, Value]>> {
    return await this.store.entries(this.state.frontier)
  }

  /** Stops the peer: no more messages, pending calls fail with PeerClosedError. */
  async close (): Promise<void> {
    this.input({ t: 'close' })
    this.disarm()
    await this.snapshots.close()
  }

  /** Stops without touching the store (simulated crash: in-memory state is simply gone). */
  crash (): void {
    this.state.phase = 'closed'
    this.disarm()
  }
}
