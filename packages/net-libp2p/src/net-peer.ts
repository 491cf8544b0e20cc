import './polyfill.js'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { Peer, type GroupConfig, type Logger, type ProcedureRegistry, type Store } from '@tideline/core'
import { createNodeLibp2p, type TidelineLibp2p } from './node.js'
import { MessageTransport } from './transport.js'

export interface NetPeerInit {
  readonly privateKey: PrivateKey
  readonly config: GroupConfig
  readonly registry: ProcedureRegistry
  readonly store: Store
  /** @default ['/ip4/127.0.0.1/tcp/0'] */
  readonly listen?: readonly string[]
  /** Multiaddrs (ending in /p2p/<id>) of peers to stay connected to: the other voters. */
  readonly peers?: readonly string[]
  /** Non-voters admitted to the group (observers, clients); voters always are. */
  readonly admit?: (peerId: string) => boolean
  readonly logger?: Logger
  /** How often the protocol's timers run. @default 5 */
  readonly tickMs?: number
}

/** How often missing connections to the configured peers are redialled. */
const RECONNECT_MS = 1_000

/**
 * A protocol peer on libp2p: the core `Peer` (clock: `Date.now`), its
 * transport, the protocol timers, and connections kept to the given peers.
 */
export class NetPeer {
  readonly id: string
  readonly peer: Peer
  readonly node: TidelineLibp2p
  readonly transport: MessageTransport
  private readonly timers: NodeJS.Timeout[] = []
  private readonly peers: readonly string[]
  private stopped = false

  private constructor (id: string, peer: Peer, node: TidelineLibp2p, transport: MessageTransport, peers: readonly string[]) {
    this.id = id
    this.peer = peer
    this.node = node
    this.transport = transport
    this.peers = peers
  }

  static async start (init: NetPeerInit): Promise<NetPeer> {
    const id = peerIdFromPrivateKey(init.privateKey).toString()
    const voters = new Set(init.config.voters)
    const isMember = (p: string): boolean => voters.has(p) || (init.admit?.(p) ?? false)
    const node = await createNodeLibp2p({ privateKey: init.privateKey, listen: init.listen ?? ['/ip4/127.0.0.1/tcp/0'], allowPeer: isMember })
    const ref: { peer?: Peer } = {}
    const transport = new MessageTransport({
      node,
      groupId: init.config.groupId,
      isMember,
      deliver: (from, m) => { ref.peer?.receive(from, m) },
      ...(init.logger === undefined ? {} : { logger: init.logger })
    })
    await transport.start()
    const peer = await Peer.open({
      id,
      config: init.config,
      registry: init.registry,
      store: init.store,
      clock: { now: () => Date.now() },
      send: (to, m) => { transport.send(to, m) },
      ...(init.logger === undefined ? {} : { logger: init.logger })
    })
    ref.peer = peer
    const net = new NetPeer(id, peer, node, transport, init.peers ?? [])
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
