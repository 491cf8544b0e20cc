import { generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { MemoryStore, Peer, createRegistry, type DecisionSigner, type GroupConfig, type Message, type PeerInit, type ProcedureMap, type ProcedureRegistry } from '../src/index.js'

/** Options every peer of a TestGroup gets (failure detection, candidacy). */
export type PeerOptions = Partial<Pick<PeerInit, 'suspectMs' | 'suspectMinMs' | 'proposeTimeoutMs' | 'candidate' | 'admitVoter' | 'maxVoters' | 'callTimeoutMs' | 'retainMs' | 'gcIntervalMs' | 'scrubIntervalMs' | 'idleHeartbeatMs' | 'mayRevoke' | 'partitions' | 'tree'>> & {
  /** Every peer has Ed25519 keys (it signs what it accepts) and every other peer as a contact. */
  readonly keys?: boolean
}

/**
 * A small in-process group on a manual clock: messages wait in a queue until
 * `step()` delivers them, so tests decide exactly what happens when.
 */
export class TestGroup {
  readonly clock = { t: 1_000_000, now (): number { return this.t } }
  readonly peers = new Map<string, Peer>()
  readonly stores = new Map<string, MemoryStore>()
  readonly down = new Set<string>()
  /** Peers cut off from everyone else (messages to and from them are dropped). */
  readonly isolated = new Set<string>()
  /** Per-peer clock offsets in ms (set before start). */
  readonly skew = new Map<string, number>()
  readonly registry: ProcedureRegistry
  options: PeerOptions = {}
  readonly config: GroupConfig
  private queue: Array<[string, string, Message]> = []
  /** Messages it returns false for are lost on the way. */
  filter: (from: string, to: string, m: Message) => boolean = () => true

  private constructor (registry: ProcedureRegistry, voters: string[], group: Partial<GroupConfig>) {
    this.registry = registry
    this.config = { groupId: 'test', epoch: 0, voters, registryHash: registry.hash, ...group }
  }

  static async create (procedures: ProcedureMap, voters = 3, observers = 0, options: PeerOptions = {}, group: Partial<GroupConfig> = {}): Promise<TestGroup> {
    const ids = Array.from({ length: voters }, (_, i) => `v${i}`)
    const g = new TestGroup(createRegistry(procedures), ids, group)
    g.options = options
    for (const id of [...ids, ...Array.from({ length: observers }, (_, i) => `o${i}`)]) {
      g.stores.set(id, new MemoryStore({ journal: true }))
      await g.start(id)
    }
    return g
  }

  /** Each peer's Ed25519 key pair (made on first use). */
  private readonly keyPairs = new Map<string, { readonly privateKey: KeyObject, readonly publicKey: KeyObject }>()

  private keyPair (id: string): { readonly privateKey: KeyObject, readonly publicKey: KeyObject } {
    let k = this.keyPairs.get(id)
    if (k === undefined) {
      k = generateKeyPairSync('ed25519')
      this.keyPairs.set(id, k)
    }
    return k
  }

  /** Peer `id`'s signer: its own key to sign, everyone's to check. */
  signer (id: string): DecisionSigner {
    return {
      sign: statement => new Uint8Array(sign(null, statement, this.keyPair(id).privateKey)),
      verify: (peer, statement, sig) => verify(null, statement, this.keyPair(peer).publicKey, sig)
    }
  }

  async start (id: string): Promise<Peer> {
    const { keys, ...options } = this.options
    const peer = await Peer.open({
      id,
      config: this.config,
      registry: this.registry,
      store: this.stores.get(id) as MemoryStore,
      clock: { now: () => this.clock.now() + (this.skew.get(id) ?? 0) },
      send: (to, m) => { if (!this.down.has(id)) this.queue.push([id, to, structuredClone(m)]) },
      checkInvariants: true,
      ...options,
      ...(keys === true ? { signer: this.signer(id), contacts: () => [...this.peers.keys()] } : {})
    })
    this.peers.set(id, peer)
    this.down.delete(id)
    return peer
  }

  peer (id: string): Peer {
    return this.peers.get(id) as Peer
  }

  /** Crashes a peer: its memory is gone, its store keeps what was durable. */
  crash (id: string): void {
    this.peer(id).crash()
    this.down.add(id)
    this.stores.set(id, (this.stores.get(id) as MemoryStore).crashAndRecover())
  }

  /** Delivers queued messages, ticks every live peer, advances the clock. */
  async step (ms = 5): Promise<void> {
    const batch = this.queue
    this.queue = []
    for (const [from, to, m] of batch) {
      if (this.down.has(to) || (this.isolated.has(from) !== this.isolated.has(to)) || !this.filter(from, to, m)) continue
      this.peers.get(to)?.receive(from, m)
    }
    for (const [id, p] of this.peers) if (!this.down.has(id)) p.tick()
    this.clock.t += ms
    await new Promise(resolve => { setImmediate(resolve) })
  }

  /** Steps until `p` settles or `maxSteps` pass; returns its outcome. */
  async run<T> (p: Promise<T>, maxSteps = 2000): Promise<{ done: true, value: T } | { done: true, error: Error } | { done: false }> {
    let out: { done: true, value: T } | { done: true, error: Error } | undefined
    p.then(value => { out = { done: true, value } }, (error: Error) => { out = { done: true, error } })
    for (let i = 0; i < maxSteps && out === undefined; i++) await this.step()
    return out ?? { done: false }
  }

  async steps (n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.step()
  }

  hash (procedure: string): string {
    return this.registry.procedures.get(procedure)?.hash ?? ''
  }
}
