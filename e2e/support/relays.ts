import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey } from '@libp2p/interface'
import { MemoryStore, Peer, type GroupConfig } from '@tideline/core'
import { MessageTransport, createNodeLibp2p, type TidelineLibp2p } from '@tideline/net-libp2p'
import { simRegistry } from '@tideline/sim'

/**
 * A voter that is also a circuit relay for browsers, in this process: the
 * core `Peer` on a MemoryStore, its `MessageTransport`, and a libp2p node
 * listening on TCP (voter↔voter: Node 20 cannot dial ws:// without a flag)
 * and WebSockets (browsers) with the relay server on. It is what `NetPeer`
 * does, with `relayServer: true` and an admit list instead of invites.
 */
export interface TestRelay {
  readonly id: string
  readonly peer: Peer
  readonly node: TidelineLibp2p
  readonly transport: MessageTransport
  /** The WebSockets listen address, ending in /p2p/<id>. */
  readonly wsAddress: string
  /** The TCP listen address, ending in /p2p/<id>. */
  readonly tcpAddress: string
  stop(): Promise<void>
}

export interface TestKey {
  readonly key: PrivateKey
  readonly id: string
}

export async function testKey (): Promise<TestKey> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

export interface RelayGroupInit {
  readonly groupId: string
  /** How many voters (each a relay). */
  readonly count: number
  /** Non-voters admitted (the pages' peer ids). */
  readonly admit: ReadonlySet<string>
}

async function startRelay (key: TestKey, config: GroupConfig, admit: ReadonlySet<string>): Promise<TestRelay> {
  const voters = new Set(config.voters)
  const isMember = (p: string): boolean => voters.has(p) || admit.has(p)
  const node = await createNodeLibp2p({
    privateKey: key.key,
    listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'],
    allowPeer: isMember,
    relayServer: true
  })
  const ref: { peer?: Peer } = {}
  const transport = new MessageTransport({ node, groupId: config.groupId, isMember, deliver: (from, m) => { ref.peer?.receive(from, m) } })
  await transport.start()
  const peer = await Peer.open({
    id: key.id,
    config,
    registry: simRegistry,
    store: new MemoryStore(),
    clock: { now: () => Date.now() },
    send: (to, m) => { transport.send(to, m) },
    // Watermark gossip reaches every page (signed, verified there): 10/s per
    // voter instead of the default 50/s keeps two cores free for the browsers.
    gossipIntervalMs: 100
  })
  ref.peer = peer
  const tick = setInterval(() => { peer.tick() }, 5)
  const addrs = node.getMultiaddrs().map(String)
  const wsAddress = addrs.find(a => a.includes('/ws/'))
  const tcpAddress = addrs.find(a => !a.includes('/ws/'))
  if (wsAddress === undefined || tcpAddress === undefined) throw new Error(`relay ${key.id} has no TCP or WebSockets address: ${addrs.join(', ')}`)
  return {
    id: key.id,
    peer,
    node,
    transport,
    wsAddress,
    tcpAddress,
    stop: async () => {
      clearInterval(tick)
      await peer.close()
      await transport.stop()
      await node.stop()
    }
  }
}

/**
 * Starts `count` voters of one group (the sim registry: bank transfers),
 * each a relay, and connects them to each other over TCP.
 */
export async function startRelayGroup (init: RelayGroupInit): Promise<TestRelay[]> {
  const keys = await Promise.all(Array.from({ length: init.count }, async () => testKey()))
  const config: GroupConfig = { groupId: init.groupId, epoch: 0, voters: keys.map(k => k.id), registryHash: simRegistry.hash }
  const relays = await Promise.all(keys.map(async k => startRelay(k, config, init.admit)))
  for (const [i, r] of relays.entries()) {
    for (const other of relays.slice(i + 1)) await r.node.dial(multiaddr(other.tcpAddress), { signal: AbortSignal.timeout(5_000) })
  }
  return relays
}
