import './polyfill.js'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { Peer, ProcedureHashMismatchError, type Logger, type ProcedureRegistry, type Store } from '@tideline/core'
import { createNodeLibp2p, type TidelineLibp2p } from './node.js'
import { MessageTransport } from './transport.js'
import { configFromGenesis, genesisDigest, verifyGenesis, type Genesis, type SignedGenesis, type SignedInvite } from './membership.js'
import { requestJoin, serveJoin } from './join.js'

export interface NetPeerInit {
  readonly privateKey: PrivateKey
  /** The group's signed genesis configuration (voters, registry); checked on start. */
  readonly genesis: SignedGenesis
  /** For a peer that is not a voter: the invite it presents to every voter it reaches. */
  readonly invite?: SignedInvite
  readonly registry: ProcedureRegistry
  readonly store: Store
  /** @default ['/ip4/127.0.0.1/tcp/0'] */
  readonly listen?: readonly string[]
  /** Multiaddrs (ending in /p2p/<id>) of peers to stay connected to: the other voters. */
  readonly peers?: readonly string[]
  /**
   * Non-voters admitted without an invite (an operator's allow list); voters
   * and peers that joined with a valid invite always are.
   */
  readonly admit?: (peerId: string) => boolean
  readonly logger?: Logger
  /** Also serve as a circuit relay (v2) so browser members can signal WebRTC to each other. @default false */
  readonly relayServer?: boolean
  /** How long a connected non-member has to present an invite before it is disconnected. @default 5000 */
  readonly joinGraceMs?: number
  /** How often the protocol's timers run. @default 5 */
  readonly tickMs?: number
}

/** How often missing connections to the configured peers are redialled. */
const RECONNECT_MS = 1_000
/** A connected peer that is not a member by then (no valid invite presented) is disconnected. */
export const JOIN_GRACE_MS = 5_000

/**
 * A protocol peer on libp2p: the core `Peer` (clock: `Date.now`), its
 * transport, the protocol timers, and connections kept to the given peers.
 */
export class NetPeer {
  readonly id: string
  readonly genesis: Genesis
  readonly peer: Peer
  readonly node: TidelineLibp2p
  readonly transport: MessageTransport
  private readonly timers: NodeJS.Timeout[] = []
  private readonly peers: readonly string[]
  private stopped = false

  private constructor (id: string, genesis: Genesis, peer: Peer, node: TidelineLibp2p, transport: MessageTransport, peers: readonly string[]) {
    this.id = id
    this.genesis = genesis
    this.peer = peer
    this.node = node
    this.transport = transport
    this.peers = peers
  }

  static async start (init: NetPeerInit): Promise<NetPeer> {
    const id = peerIdFromPrivateKey(init.privateKey).toString()
    const genesis = await verifyGenesis(init.genesis)
    if (genesis.registryHash !== init.registry.hash) throw new ProcedureHashMismatchError(`the group runs procedures ${genesis.registryHash}; this peer has ${init.registry.hash}`)
    const config = configFromGenesis(genesis)
    const voters = new Set(config.voters)
    const joined = new Set<string>()
    const isMember = (p: string): boolean => voters.has(p) || joined.has(p) || (init.admit?.(p) ?? false)
    // Anyone authenticated may connect, but until it is a member it can only speak the join protocol.
    const node = await createNodeLibp2p({ privateKey: init.privateKey, listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true, relayServer: init.relayServer ?? false })
    const ref: { peer?: Peer } = {}
    const transport = new MessageTransport({
      node,
      groupId: config.groupId,
      isMember,
      deliver: (from, m) => { ref.peer?.receive(from, m) },
      ...(init.logger === undefined ? {} : { logger: init.logger })
    })
    await transport.start()
    const count = (name: string): void => { transport.count(name) }
    if (voters.has(id)) {
      await serveJoin({
        node,
        signedGenesis: init.genesis,
        genesis,
        digest: await genesisDigest(init.genesis.body),
        isMember,
        admit: p => { joined.add(p) },
        count,
        ...(init.logger === undefined ? {} : { logger: init.logger })
      })
    }
    node.addEventListener('connection:open', e => {
      const remote = e.detail.remotePeer
      if (isMember(remote.toString())) return
      setTimeout(() => {
        if (isMember(remote.toString()) || node.status !== 'started') return
        count('hung-up-non-member')
        node.hangUp(remote).catch(() => {})
      }, init.joinGraceMs ?? JOIN_GRACE_MS).unref()
    })
    if (!voters.has(id)) {
      // An observer presents its invite to each voter it connects to (again after every reconnect).
      node.addEventListener('peer:connect', e => {
        const p = e.detail.toString()
        if (!voters.has(p)) return
        requestJoin(node, p, init.invite === undefined ? { creator: genesis.creator } : { invite: init.invite, creator: genesis.creator })
          .then(() => { count('joined-voter') }, (err: unknown) => { count('join-failed'); init.logger?.('join-failed', { voter: p, error: (err as Error).message }) })
      })
    }
    const peer = await Peer.open({
      id,
      config,
      registry: init.registry,
      store: init.store,
      clock: { now: () => Date.now() },
      send: (to, m) => { transport.send(to, m) },
      ...(init.logger === undefined ? {} : { logger: init.logger })
    })
    ref.peer = peer
    const net = new NetPeer(id, genesis, peer, node, transport, init.peers ?? [])
    net.timers.push(setInterval(() => { peer.tick() }, init.tickMs ?? 5))
    net.timers.push(setInterval(() => { net.connect() }, RECONNECT_MS))
    net.connect()
    return net
  }

  /** Listen addresses, each ending in /p2p/<id>. */
  addresses (): string[] {
    return this.node.getMultiaddrs().map(String)
  }

  /** Dials every configured peer not connected now; failures are retried on the next round. */
  private connect (): void {
    if (this.stopped) return
    for (const a of this.peers) {
      const ma = multiaddr(a)
      const id = ma.getComponents().find(c => c.name === 'p2p')?.value
      if (id === undefined || id === this.id) continue
      if (this.node.getConnections().some(c => c.remotePeer.toString() === id)) continue
      this.node.dial(ma, { signal: AbortSignal.timeout(RECONNECT_MS * 2) }).catch(() => {})
    }
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    await this.peer.close()
    await this.transport.stop()
    await this.node.stop()
  }
}
