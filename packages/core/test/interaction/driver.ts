import {
  ArrayReader, CollectingWriter, MemoryStore, applyRunSync, forwardReadSync, createRegistry, decisionKey, decisionValue, invariants, loadPersistedSync, newPeerState, peerOptions, peerTag, readResult, restore, step,
  type Effect, type GroupConfig, type Input, type Message, type PeerState, type ProcedureMap, type ProcedureRegistry, type Thunk, type Batch,
  type Timestamp
} from '../../src/index.js'

/**
 * A hand-driven group for interaction scripts: every peer is a bare
 * `PeerState` stepped with `step`. Store effects and `later` inputs are
 * carried out at the end of each command (against a MemoryStore's
 * synchronous face); messages wait on the wire until a `deliver` command.
 * Everything that happens is rendered as text, one line per effect.
 */
export class ScriptGroup {
  private readonly registry: ProcedureRegistry
  private readonly config: GroupConfig
  private readonly states = new Map<string, PeerState>()
  private readonly stores = new Map<string, MemoryStore>()
  /** Snapshot readers open, by peer and export id; snapshots being staged, by peer. */
  private readonly readers = new Map<string, ArrayReader>()
  private readonly writers = new Map<string, { id: string, writer: CollectingWriter }>()
  private readonly tags = new Map<string, string>()
  private wire: Array<{ from: string, to: string, message: Message }> = []
  private readonly pending: Array<{ peer: string, run: () => Input | undefined, label: string }> = []
  readonly base = 1_000_000
  now = this.base
  private out: string[] = []

  constructor (procedures: ProcedureMap, voters: readonly string[], observers: readonly string[] = [], private readonly options: Parameters<typeof peerOptions>[0] = { suspectMs: 200, proposeTimeoutMs: 50 }) {
    this.registry = createRegistry(procedures)
    this.config = { groupId: 'script', epoch: 0, voters: [...voters], registryHash: this.registry.hash }
    for (const id of [...voters, ...observers]) {
      this.tags.set(peerTag(id), id)
      this.stores.set(id, new MemoryStore({ journal: true }))
      this.open(id)
    }
    this.out = []
  }

  private open (id: string): void {
    const store = this.stores.get(id) as MemoryStore
    const s = newPeerState({ id, config: this.config, registry: this.registry, options: peerOptions(this.options), now: this.now })
    restore(s, loadPersistedSync(store, this.config), this.config)
    this.states.set(id, s)
    this.input(id, { t: 'start' })
  }

  /** Steps `peer` with `input`, renders its effects and queues what they ask for. */
  input (peer: string, input: Input): void {
    const s = this.states.get(peer)
    if (s === undefined) throw new Error(`no peer ${peer}`)
    const effects = step(s, input, this.now)
    const broken = invariants(s)
    if (broken.length > 0) throw new Error(`${peer} broke invariants: ${broken.join('; ')}`)
    for (const e of effects) this.carry(peer, e)
  }

  /** Carries out every queued store operation and `later` input, in order, until none is left. */
  settle (): void {
    for (let n = 0; this.pending.length > 0; n++) {
      if (n > 10_000) throw new Error('store effects never settle')
      const next = this.pending.shift() as (typeof this.pending)[number]
      if (!this.states.has(next.peer)) continue
      const input = next.run()
      if (input === undefined) continue
      this.out.push(`${next.peer} <- ${next.label}`)
      this.input(next.peer, input)
    }
  }

  /** Delivers the messages on the wire that match (all of them by default). */
  deliver (filter: { from?: string, to?: string } = {}): void {
    const take = this.wire.filter(w => (filter.from === undefined || w.from === filter.from) && (filter.to === undefined || w.to === filter.to))
    this.wire = this.wire.filter(w => !take.includes(w))
    for (const w of take) {
      if (!this.states.has(w.to)) continue
      this.out.push(`${w.to} <- ${w.from}: ${this.message(w.message)}`)
      this.input(w.to, { t: 'receive', from: w.from, message: structuredClone(w.message) })
      this.settle()
    }
  }

  /** How many messages are on the wire, sent and not yet delivered. */
  count (): number {
    return this.wire.length
  }

  /** Moves the clock `ms` forward, 10 ms a round: each round ticks `peers` (every live one by default), carries out and delivers everything. */
  rounds (ms: number, peers: readonly string[] = [...this.states.keys()]): void {
    for (let t = 0; t < ms; t += 10) {
      this.now += 10
      for (const p of peers) this.input(p, { t: 'tick' })
      this.settle()
      this.deliver()
      this.settle()
    }
  }

  /** How many messages on the wire match (by sender, receiver and type). */
  onWire (filter: { from?: string, to?: string, t?: Message['t'] }): number {
    return this.wire.filter(w => (filter.from === undefined || w.from === filter.from) && (filter.to === undefined || w.to === filter.to) && (filter.t === undefined || w.message.t === filter.t)).length
  }

  /** Drops the matching messages on the wire. */
  drop (filter: { from?: string, to?: string }): number {
    const before = this.wire.length
    this.wire = this.wire.filter(w => !((filter.from === undefined || w.from === filter.from) && (filter.to === undefined || w.to === filter.to)))
    return before - this.wire.length
  }

  /** The peer's memory is gone; its store keeps what was durable. */
  crash (peer: string): void {
    this.states.delete(peer)
    for (const k of this.readers.keys()) if (k.startsWith(`${peer} `)) this.readers.delete(k)
    this.writers.delete(peer)
    this.stores.set(peer, (this.stores.get(peer) as MemoryStore).crashAndRecover())
    this.wire = this.wire.filter(w => w.to !== peer && w.from !== peer)
  }

  restart (peer: string): void {
    this.open(peer)
  }

  state (peer: string): PeerState {
    return this.states.get(peer) as PeerState
  }

  store (peer: string): MemoryStore {
    return this.stores.get(peer) as MemoryStore
  }

  hash (procedure: string): string {
    return this.registry.procedures.get(procedure)?.hash ?? ''
  }

  /** What happened since the last call, one line each. */
  take (): string[] {
    const out = this.out
    this.out = []
    return out
  }

  private carry (peer: string, e: Effect): void {
    const store = this.stores.get(peer) as MemoryStore
    const line = (text: string): void => { this.out.push(`  ${text}`) }
    switch (e.t) {
      case 'send':
        line(`send ${e.to}: ${this.message(e.message)}`)
        this.wire.push({ from: peer, to: e.to, message: e.message })
        break
      case 'persist':
        line(`persist ${this.batch(e.batch)}`)
        this.pending.push({ peer, label: e.done.t, run: () => { store.writeSync(e.batch); return e.done } })
        break
      case 'apply':
        line(`apply ${e.run.map(t => this.thunk(t)).join(' ')}`)
        this.pending.push({
          peer,
          label: 'run-applied',
          run: () => ({ t: 'run-applied', run: e.run, applied: applyRunSync(store, this.registry, e.run, e.base, e.rules) })
        })
        break
      case 'read-values':
        line(`read ${e.keys.join(',')} below ${this.ts(e.at)}`)
        this.pending.push({ peer, label: 'values-read', run: () => ({ t: 'values-read', read: e.read, result: readResult(e.keys, store.latestValuesSync(e.keys, e.at), e.at) }) })
        break
      case 'read-forward':
        line(`read forward ${e.keys.join(',')} below ${this.ts(e.ts)}`)
        this.pending.push({ peer, label: 'forward-read', run: () => forwardReadSync(store, e) })
        break
      case 'read-batches':
        line(`read batches ${e.coordinator} e${e.epoch} ${e.from}..${e.last}`)
        this.pending.push({ peer, label: 'batches-read', run: () => ({ t: 'batches-read', replyTo: e.replyTo, coordinator: e.coordinator, epoch: e.epoch, from: e.from, ...store.batchRangeSync(e.coordinator, e.epoch, e.from, e.last) }) })
        break
      case 'read-decision':
        line(`read decision e${e.epoch}`)
        this.pending.push({ peer, label: 'decision-read', run: () => { const d = decisionValue(store.getMetaSync(decisionKey(e.epoch))); return { t: 'decision-read', replyTo: e.replyTo, change: d?.change, proof: d?.proof } } })
        break
      case 'gc':
        line(`gc below ${this.ts(e.horizon)}`)
        this.pending.push({ peer, label: 'gc-done', run: () => ({ t: 'gc-done', horizon: e.horizon, result: store.gcSync(e.horizon, e.records, e.limit) }) })
        break
      case 'scrub':
        line(`scrub below ${this.ts(e.at)}`)
        this.pending.push({ peer, label: 'scrub-done', run: () => { store.exportSnapshotSync(e.at); return { t: 'scrub-done' } } })
        break
      case 'export-snapshot':
        line(`export snapshot ${e.id}`)
        this.pending.push({ peer, label: 'snapshot-exported', run: () => { this.readers.set(`${peer} ${e.id}`, new ArrayReader(store.exportSnapshotSync(e.at))); return { t: 'snapshot-exported', id: e.id, to: e.to, at: e.at } } })
        break
      case 'read-snapshot':
        line(`read snapshot ${e.id}`)
        this.pending.push({ peer, label: 'snapshot-read', run: () => { const r = this.readers.get(`${peer} ${e.id}`); return r === undefined ? undefined : { t: 'snapshot-read', id: e.id, part: r.take(e.maxBytes) } } })
        break
      case 'close-snapshot':
        line(`close snapshot ${e.id}`)
        this.readers.delete(`${peer} ${e.id}`)
        break
      case 'stage-snapshot': {
        line(`stage snapshot ${e.id} at ${this.ts(e.at)}: ${e.items.entries.length + e.items.txns.length} items`)
        const w = this.writers.get(peer)?.id === e.id ? this.writers.get(peer) as { id: string, writer: CollectingWriter } : { id: e.id, writer: new CollectingWriter(e.at) }
        this.writers.set(peer, w)
        this.pending.push({ peer, label: 'snapshot-staged', run: () => ({ t: 'snapshot-staged', id: e.id, digest: w.writer.add(e.items) }) })
        break
      }
      case 'import-snapshot': {
        line(`import snapshot ${e.id}`)
        const w = this.writers.get(peer)
        this.pending.push({ peer, label: 'snapshot-imported', run: () => { store.importSnapshotSync((w as { writer: CollectingWriter }).writer.snapshot(e.meta)); return { t: 'snapshot-imported', cursor: e.cursor } } })
        break
      }
      case 'drop-snapshot':
        line(`drop snapshot ${e.id}`)
        this.writers.delete(peer)
        break
      case 'settle':
        line(`settle call ${e.call}: ${e.error !== undefined ? `${e.error.name}` : this.value(e.value)}`)
        break
      case 'later':
        line(`later ${e.input.t === 'self' ? `self ${this.message(e.input.message)}` : e.input.t}`)
        this.pending.push({ peer, label: e.input.t === 'self' ? `self: ${e.input.message.t}` : e.input.t, run: () => e.input })
        break
      case 'event':
        line(`event ${e.event.t === 'applied' ? `applied ${e.event.written.join(',')}` : e.event.t === 'epoch' ? `epoch e${e.event.epoch} voters ${e.event.voters.join(',')} aborted ${e.event.aborted}` : `diverged from ${e.event.divergence.peer}`}`)
        break
      case 'sign-batch':
        // The interaction peers have no keys: their batches go unsigned (only voters take them, from their coordinators).
        line(`sign batch e${e.epoch}#${e.seq}`)
        this.pending.push({ peer, label: 'batch-signed', run: () => ({ t: 'batch-signed', epoch: e.epoch, seq: e.seq, sig: undefined }) })
        break
      case 'sign-decision':
      case 'verify-decision':
      case 'verify-batches':
      case 'sign-entries':
      case 'verify-entries':
      case 'connect':
      case 'disconnect':
        // The interaction peers have no keys: they never sign, and refuse relayed decisions before any check.
        throw new Error(`unexpected ${e.t}: the interaction driver's peers have no signer`)
      case 'log': break
    }
  }

  /** `+ms@peer.event`: milliseconds since the script's start, the minting peer, its event counter. */
  ts (ts: Timestamp): string {
    if (/^0+$/.test(ts)) return '0'
    if (/^f+$/.test(ts)) return 'inf'
    const ms = parseInt(ts.slice(0, 12), 16) - this.base
    return `+${ms}@${this.tags.get(ts.slice(12, 28)) ?? '?'}.${parseInt(ts.slice(28), 16)}`
  }

  /** `v0#3.1`: thunk 1 of v0's batch 3. */
  private thunk (t: Thunk): string {
    return `${t.coordinator}#${t.seq}.${t.index}`
  }

  /** `v0#3(2)`: v0's batch 3, of 2 thunks. */
  private batches (bs: readonly Batch[]): string {
    return bs.map(b => `${b.coordinator}#${b.seq}(${b.thunks.length})`).join(' ')
  }

  private batch (b: Parameters<MemoryStore['writeSync']>[0]): string {
    const parts: string[] = []
    if (b.batches !== undefined) parts.push(`batches ${this.batches(b.batches)}`)
    if (b.meta !== undefined) parts.push(`meta ${b.meta.map(([k]) => k).join(',')}`)
    return parts.join('; ')
  }

  private value (v: unknown): string {
    if (v === undefined) return 'done'
    const r = v as { status?: string, value?: unknown, reason?: string, values?: Record<string, unknown>, ts?: Timestamp }
    if (r.values !== undefined) return `values ${JSON.stringify(r.values)} at ${this.ts(r.ts as Timestamp)}`
    if (r.status === 'committed') return `committed ${JSON.stringify(r.value)} at ${this.ts(r.ts as Timestamp)}`
    if (r.status === 'aborted') return `aborted ${JSON.stringify(r.reason)}`
    return JSON.stringify(v)
  }

  private message (m: Message): string {
    const wm = (entries: ReadonlyArray<{ voter: string, svw: Timestamp, count: number }>): string =>
      entries.map(e => `${e.voter}<${this.ts(e.svw)}/${e.count}`).join(' ')
    switch (m.t) {
      case 'write': return `write ${this.batches(m.batches)} wm ${wm(m.wm)}`
      case 'ack': return `ack e${m.epoch} [${m.seqs.join(',')}] wm ${wm(m.wm)}`
      case 'wm': return `wm ${wm(m.wm)}`
      case 'wmr': return `wmr ${wm(m.wm)}`
      case 'gap-req': return `gap-req ${m.coordinator} e${m.epoch} ${m.from}..${m.to}`
      case 'gap-rep': return `gap-rep ${this.batches(m.batches)}${m.gone !== undefined ? ` gone ${m.gone.coordinator} e${m.gone.epoch} ${m.gone.from}` : ''}`
      case 'submit': return `submit ${m.req.clientTxnId}`
      case 'submit-rep': return `submit-rep ${m.clientTxnId} ${m.result !== undefined ? this.value(m.result) : m.error?.name ?? ''}`
      case 'read': return `read ${m.keys.join(',')} ${m.consistency}`
      case 'read-rep': return `read-rep ${m.result !== undefined ? this.value(m.result) : m.error?.name ?? ''}`
      case 'ts-req': return 'ts-req'
      case 'ts-rep': return `ts-rep ${this.ts(m.ts)}`
      case 'ck': return `ck ${m.count}`
      case 'hello': return `hello e${m.epoch ?? '?'}${m.candidate === true ? ' candidate' : ''}${m.tree === undefined ? '' : ` tree ${m.tree.parent ?? '-'} ${m.tree.size}`}`
      case 'place': return `place ${m.parent ?? '-'}`
      case 'tw': return `tw by ${m.by} ${wm(m.wm)}`
      case 'revoke': return `revoke ${m.targets.map(t => `${t.kind} ${t.id}`).join(', ')}`
      case 'revoke-rep': return `revoke-rep ${m.epoch ?? m.error?.name ?? ''}`
      case 'confirm': return `confirm e${m.epoch} round ${m.round}`
      case 'confirmed': return `confirmed e${m.epoch} round ${m.round}`
      case 'rc-prepare': return `rc-prepare e${m.epoch} ballot ${m.ballot.n}.${m.ballot.by}`
      case 'rc-promise': return `rc-promise e${m.epoch} ballot ${m.ballot.n}.${m.ballot.by} have ${m.report.have.map(h => `${h.coordinator}:${h.seq}`).join(',')} held [${this.batches(m.report.held)}]`
      case 'rc-accept': return `rc-accept e${m.epoch} ballot ${m.ballot.n}.${m.ballot.by} -> e${m.value.epoch} voters ${m.value.voters.join(',')} cuts ${m.value.cuts.map(c => `${c.coordinator}:${c.end}${c.skip.length > 0 ? `-${c.skip.join('-')}` : ''}`).join(',')} kept [${this.batches(m.value.batches)}]`
      case 'rc-accepted': return `rc-accepted e${m.epoch} ballot ${m.ballot.n}.${m.ballot.by}`
      case 'rc-nack': return `rc-nack e${m.epoch} ballot ${m.ballot.n}.${m.ballot.by}`
      case 'rc-decided': return `rc-decided e${m.value.epoch} voters ${m.value.voters.join(',')}`
      case 'rc-fetch': return `rc-fetch e${m.epoch}`
      case 'dur': return `dur ${this.ts(m.durable)} gc ${this.ts(m.gc)}`
      case 'snap-req': return `snap-req ${m.id} chunk ${m.chunk}`
      case 'snap-no': return `snap-no ${m.id} (${m.why})`
      case 'snap-chunk': return `snap-chunk ${m.id} ${m.chunk}: ${m.entries.length + m.txns.length} items at ${this.ts(m.at)}${m.last ? ` last, digest ${m.digest as string}` : ''}`
      case 'st-req': return `st-req ${m.count}`
      case 'st-rep': return `st-rep ${m.count}${m.state === undefined ? ' none' : ` ${m.state.join('.')}`}`
      case 'fwd': return `fwd ${m.items.map(f => this.ts(f.ts)).join(',')}`
      case 'fwd-req': return `fwd-req ${m.items.map(i => this.ts(i.ts)).join(',')}`
      case 'res': return `res ${m.items.map(r => this.ts(r.ts)).join(',')}`
      case 'res-req': return `res-req ${m.stamps.map(t => this.ts(t)).join(',')}`
      case 'wm-want': return `wm-want ${this.ts(m.ts)}`
      case 'pst-req': return `pst-req ${this.ts(m.at)} [${m.parts.join(',')}]`
      case 'pst-rep': return `pst-rep ${this.ts(m.at)} ${m.states.length}`
    }
  }
}
