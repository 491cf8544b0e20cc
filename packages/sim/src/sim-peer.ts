import {
  ArrayReader, CollectingWriter, StateDigest, settleRunSync, forwardReadSync, damagedInput, decisionKey, decisionValue, carrySigning, nextDue, invariants, loadPersistedSync, sequencesOf, newPeerState, peerOptions, peerStatus, rangeResult, readResult, restore, step,
  type Effect, type GroupConfig, type Input, type MemoryStore, type Message, type PeerInit, type PeerState, type PeerStatus, type ProcedureRegistry,
  type ReadResult, type Revocation, type Thunk, type Value
} from '@tideline/core'
import type { EventLoop } from './event-loop.js'
import type { Rng } from './rng.js'

export interface SimPeerInit extends Pick<PeerInit, 'suspectMs' | 'suspectMinMs' | 'proposeTimeoutMs' | 'candidate' | 'admitVoter' | 'maxRunThunks' | 'retainMs' | 'gcIntervalMs' | 'scrubIntervalMs' | 'gcStepLimit' | 'snapshotChunkBytes' | 'signer' | 'contacts' | 'maxVoters' | 'quiesceAfterMs' | 'tree'> {
  readonly id: string
  readonly config: GroupConfig
  readonly registry: ProcedureRegistry
  readonly store: MemoryStore
  readonly loop: EventLoop
  /** The peer's clock: the loop's time plus its skew. */
  readonly now: () => number
  readonly send: (to: string, m: Message) => void
  /** Draws each store write's latency (virtual ms). */
  readonly storeRng: Rng
  /** Longest a store write or a run takes (virtual ms); each takes a random time up to it. @default 2 */
  readonly storeDelayMs?: number
  readonly log?: (event: string, detail: Record<string, unknown>) => void
  /** Called with what broke whenever `invariants` fails after a step. */
  readonly broken: (what: string[]) => void
}

/** `make`'s input, or `state-damaged` when the store found a damaged record (StoreCorruptionError), as the production driver maps it. */
function damageOr (make: () => Input | undefined, during: { readonly run?: readonly Thunk[] } = {}): Input | undefined {
  try {
    return make()
  } catch (err) {
    return damagedInput(err, during)
  }
}

/**
 * A simulated peer: drives the protocol's `step` directly inside the event
 * loop. Store effects run against the MemoryStore's synchronous face, their
 * completions come back as events after a drawn latency (writes) or at once
 * (reads), and `invariants` is checked after every step. Nothing awaits, so
 * the loop needs no wait for promise chains between events.
 */
export class SimPeer {
  readonly id: string
  private readonly init: SimPeerInit
  private readonly state: PeerState
  private readonly calls = new Map<number, (error: Error | undefined, value: unknown) => void>()
  private nextCall = 0
  private crashed = false
  /** Inputs that arrived while the process was stopped (undefined: running). */
  private stopped: Input[] | undefined
  /** Snapshot readers open for exports, by id, and the snapshot being staged (gone with the peer's memory). */
  private readonly readers = new Map<string, ArrayReader>()
  private writer: { readonly id: string, readonly writer: CollectingWriter } | undefined
  /** The simulator's keys check callers at once (a group of signed calls). */
  private readonly verifyCall = (peer: string, statement: Uint8Array, sig: Uint8Array): boolean => this.init.signer?.verify(peer, statement, sig) === true
  /** When the scheduled tick fires (Infinity: none). */
  private armedAt = Infinity

  constructor (init: SimPeerInit) {
    this.id = init.id
    this.init = init
    this.state = newPeerState({ id: init.id, config: init.config, registry: init.registry, options: peerOptions(init), now: init.now() })
    const persisted = loadPersistedSync(init.store, init.config)
    restore(this.state, persisted, init.config)
    if (persisted.cursor !== undefined) {
      const scrubbed = damageOr(() => ({ t: 'scrubbed', state: StateDigest.lanesOf(init.store.exportSnapshotSync(this.state.frontier).entries) }))
      if (scrubbed !== undefined) this.input(scrubbed)
    }
    this.input({ t: 'start' })
  }

  receive (from: string, message: unknown): void {
    this.input({ t: 'receive', from, message })
  }

  tick (): void {
    this.input({ t: 'tick' })
  }

  status (): PeerStatus {
    return peerStatus(this.state)
  }
  /** For SIM_DEBUG: each epoch's streams as this peer sees them. */
  debugStreams (): unknown {
    const st = this.state
    return [{ evaluation: st.evaluation, evaluatingEpoch: st.evaluatingEpoch, waiting: st.parts?.waiting?.thunk.ts, have: [...(st.parts?.have ?? [])], fetch: st.history.fetch !== undefined, heal: st.history.heal !== undefined, exportWanted: st.history.exportWanted !== undefined }, ...[...this.state.epochs.values()].map(r => ({ epoch: r.epoch, voters: r.voters, floor: r.floor, wm: r.wm.entries().map(e => [e.voter, e.count, e.tails]), streams: [...r.streams].map(([c, x]) => ({ c, have: x.have, evalNext: x.evalNext, evalIndex: x.evalIndex, held: [...x.held.keys()], voids: [...(x.voids ?? [])].slice(-20), end: x.end, skip: [...(x.skip ?? [])] })) }))]
  }


  /** A strict or snapshot read; `done` is called from a later event. */
  read (keys: readonly string[], options: { consistency: 'strict' | 'snapshot', timeoutMs: number }, done: (error: Error | undefined, result: ReadResult | undefined) => void): void {
    const call = ++this.nextCall
    this.calls.set(call, (error, value) => { done(error, value as ReadResult | undefined) })
    this.input({ t: 'read', call, keys, consistency: options.consistency, timeoutMs: options.timeoutMs })
  }

  requestEpochChange (): void {
    this.input({ t: 'request-epoch-change' })
  }

  /** Hands over as a voter (a tab voter hidden); `done` is called once an epoch without it is installed, or on a timeout or call-off. */
  leave (timeoutMs: number, done: (error: Error | undefined) => void): void {
    const call = ++this.nextCall
    this.calls.set(call, error => { done(error) })
    this.input({ t: 'leave', call, timeoutMs })
  }

  /** Asks to be voted in (again) while not a voter, or stops asking. */
  setCandidate (candidate: boolean): void {
    this.input({ t: 'candidacy', candidate })
  }

  /** As a voter, revokes `targets` in its next epoch change; `done` is called once one holds them (or on a refusal or timeout). */
  revoke (targets: readonly Revocation[], timeoutMs: number, done: (error: Error | undefined, epoch: number | undefined) => void): void {
    const call = ++this.nextCall
    this.calls.set(call, (error, value) => { done(error, value as number | undefined) })
    this.input({ t: 'revoke', call, targets, timeoutMs })
  }

  /** Whether evaluation stands inside a batch (part of it evaluated): right after a restart, the cursor put it there. */
  get insideBatch (): boolean {
    for (const record of this.state.epochs.values()) for (const stream of record.streams.values()) if (stream.evalIndex > 0) return true
    return false
  }

  sequences (): Record<string, { have: number, evalNext: number }> {
    return sequencesOf(this.state)
  }

  /** The partitions this replica has (a partitioned group), or undefined: all of them. */
  holding (): readonly number[] | undefined {
    return this.state.parts === undefined ? undefined : [...this.state.parts.have].sort((a, b) => a - b)
  }

  get evaluatingCurrentEpoch (): boolean {
    return this.state.evaluatingEpoch === this.state.current.epoch
  }

  /** The current value of every key below this replica's frontier. */
  snapshot (): Array<[string, Value]> {
    return this.init.store.entriesSync(this.state.frontier)
  }

  close (): void {
    this.input({ t: 'close' })
  }

  /** In-memory state is gone; nothing scheduled for this peer runs any more. */
  crash (): void {
    this.crashed = true
  }

  /** The process stops (SIGSTOP, a long GC): what reaches it meanwhile (messages, timers, store completions) waits. */
  pause (): void {
    this.stopped ??= []
  }

  /** It goes on (SIGCONT) with its memory whole, and handles what waited, in the order it arrived. */
  resume (): void {
    const waited = this.stopped ?? []
    this.stopped = undefined
    for (const input of waited) this.input(input)
  }

  /** Storage damage it found and has not repaired yet: state it heals by snapshot, or batches it fetches again. */
  get damaged (): boolean {
    if (this.state.history.heal !== undefined) return true
    for (const record of this.state.epochs.values()) for (const stream of record.streams.values()) if ((stream.damaged?.size ?? 0) > 0) return true
    return false
  }

  get paused (): boolean {
    return this.stopped !== undefined
  }

  private input (input: Input): void {
    if (this.crashed) return
    if (this.stopped !== undefined) {
      this.stopped.push(input)
      return
    }
    const effects = step(this.state, input, this.init.now())
    const broken = invariants(this.state)
    if (broken.length > 0) this.init.broken(broken)
    for (const e of effects) this.carryOut(e)
    this.arm()
  }

  /**
   * Schedules the next tick for when the protocol says a timeout is due
   * (nextDue), as the production driver arms its timer: the simulator checks
   * that a peer sleeping between heartbeats when idle still completes
   * everything.
   */
  private arm (): void {
    const due = nextDue(this.state)
    if (due === Infinity || due >= this.armedAt) return
    this.armedAt = due
    this.init.loop.after(Math.max(0, due - this.init.now()), () => {
      if (this.crashed || this.armedAt !== due) return
      this.armedAt = Infinity
      this.input({ t: 'tick' })
    })
  }

  /** Feeds `input` back after `delay` virtual ms, unless the peer crashed by then. */
  private later (delay: number, make: () => Input | undefined): void {
    this.init.loop.after(delay, () => {
      if (this.crashed) return
      const input = make()
      if (input !== undefined) this.input(input)
    })
  }

  private carryOut (e: Effect): void {
    const store = this.init.store
    switch (e.t) {
      case 'send': this.init.send(e.to, e.message); break
      case 'persist':
        // The write lands only if the peer is still up when its latency has passed: a crash before loses it.
        this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => { store.writeSync(e.batch); return e.done })
        break
      case 'apply':
        // Read and evaluated after one store latency; a partitioned run's forwarded reads go out then, and the run is
        // written after another (a crash in between loses the write, as it would a store's, but not what was sent).
        this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => damageOr(() => {
          const { batch, applied } = settleRunSync(store, this.init.registry, e.run, e.base, e.rules, this.verifyCall, e.plan)
          this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => {
            store.writeSync(batch)
            return { t: 'run-applied', run: e.run, applied, ...(e.plan === undefined ? {} : { plan: e.plan }) }
          })
          return e.plan !== undefined && (applied.forwards?.length ?? 0) > 0 ? { t: 'run-forwards', run: e.run, plan: e.plan, forwards: applied.forwards ?? [] } : undefined
        }, { run: e.run }))
        break
      case 'read-values':
        this.later(0, (): Input => {
          try {
            const result = e.range === undefined ? readResult(e.keys, store.latestValuesSync(e.keys, e.at), e.at) : rangeResult(store.rangeSync(e.range.range, e.at, e.range), e.at)
            return { t: 'values-read', read: e.read, result }
          } catch (err) {
            // Too old a read (below a snapshot this replica installed, or below its GC horizon) fails alone; a damaged value heals.
            if ((err as Error).name !== 'SnapshotTooOldError') return damagedInput(err, { read: e.read })
            return { t: 'values-refused', read: e.read, error: { name: (err as Error).name, message: (err as Error).message } }
          }
        })
        break
      case 'read-forward':
        this.later(0, () => forwardReadSync(store, e))
        break
      case 'read-batches':
        this.later(0, () => ({ t: 'batches-read', replyTo: e.replyTo, coordinator: e.coordinator, epoch: e.epoch, from: e.from, ...store.batchRangeSync(e.coordinator, e.epoch, e.from, e.last), ...(e.h === undefined ? {} : { h: e.h }) }))
        break
      case 'read-decision':
        this.later(0, () => { const d = decisionValue(store.getMetaSync(decisionKey(e.epoch))); return { t: 'decision-read', replyTo: e.replyTo, change: d?.change, proof: d?.proof } })
        break
      // Signing and checking take no virtual time (the simulator's keys answer at once).
      case 'sign-decision': case 'verify-decision': case 'sign-batch': case 'verify-batches': case 'sign-entries': case 'verify-entries':
        this.later(0, () => carrySigning(this.init.signer, this.init.config.groupId, e) as Input)
        break
      case 'gc':
        this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => ({ t: 'gc-done', horizon: e.horizon, result: store.gcSync(e.horizon, e.records, e.limit) }))
        break
      case 'export-snapshot':
        // The view is taken when the export is opened (evaluation waits for it): later reads see that state.
        this.later(0, () => damageOr(() => {
          this.readers.set(e.id, new ArrayReader(store.exportSnapshotSync(e.at)))
          return { t: 'snapshot-exported', id: e.id, to: e.to, at: e.at }
        }))
        break
      case 'read-snapshot':
        this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => {
          const reader = this.readers.get(e.id)
          return reader === undefined ? undefined : { t: 'snapshot-read', id: e.id, part: reader.take(e.maxBytes) }
        })
        break
      case 'close-snapshot': this.readers.delete(e.id); break
      case 'scrub': this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => damageOr(() => { store.exportSnapshotSync(e.at); return { t: 'scrub-done' } })); break
      case 'stage-snapshot': {
        // One staging at a time: a new one drops the last (its parts are gone with it).
        const w = this.writer?.id === e.id ? this.writer : { id: e.id, writer: new CollectingWriter(e.at) }
        this.writer = w
        this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => (this.writer === w ? { t: 'snapshot-staged', id: e.id, digest: w.writer.add(e.items) } : undefined))
        break
      }
      case 'import-snapshot': {
        const w = this.writer
        // Atomic and strict: a crash before the latency passed leaves the old state.
        this.later(this.init.storeRng.int(0, this.init.storeDelayMs ?? 2), () => {
          if (w?.id !== e.id || this.writer !== w) throw new Error(`no snapshot ${e.id} is staged`)
          store.importSnapshotSync(w.writer.snapshot(e.meta))
          this.writer = undefined
          return { t: 'snapshot-imported', cursor: e.cursor }
        })
        break
      }
      case 'drop-snapshot': if (this.writer?.id === e.id) this.writer = undefined; break
      case 'settle': {
        const done = this.calls.get(e.call)
        this.calls.delete(e.call)
        done?.(e.error, e.value)
        break
      }
      case 'later': this.later(0, () => e.input); break
      // Every simulated peer reaches every other: a tree parent needs no dialling.
      case 'event': case 'connect': case 'disconnect': break
      case 'log': this.init.log?.(e.event, e.detail); break
    }
  }
}
