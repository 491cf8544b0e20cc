import './polyfill.js'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify, type Identify } from '@libp2p/identify'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { GOSSIPSUB_OPTIONS } from './gossip.js'

export type TidelineLibp2p = Libp2p<{ identify: Identify, pubsub: GossipSub }>

export interface NodeLibp2pInit {
  readonly privateKey: PrivateKey
  /** Listen multiaddrs, e.g. `/ip4/127.0.0.1/tcp/0` and `/ip4/127.0.0.1/tcp/0/ws`. */
  readonly listen: readonly string[]
  /**
   * Whether a peer may connect at all (checked after the Noise handshake has
   * authenticated its id, both ways). Members only; see membership.ts.
   */
  readonly allowPeer: (peerId: string) => boolean
  /**
   * Also serve as a circuit relay (v2) for members: browsers reserve a slot
   * here and signal WebRTC to each other through it (see browser.ts). Relayed
   * connections keep libp2p's default limits (2 min, 128 KiB), which is plenty
   * for signalling; Node↔Node traffic stays on TCP/WebSockets.
   * @default false
   */
  readonly relayServer?: boolean
  /**
   * With `relayServer`: most browsers holding a slot here at once (across
   * every group; circuit-relay-v2's own default is 15). A slot lasts two
   * hours unless renewed, and any peer that connects may take one.
   * @default DEFAULT_MAX_RESERVATIONS
   */
  readonly maxReservations?: number
  /**
   * Addresses to tell peers instead of the listen ones (a relay behind a TLS
   * proxy or NAT: e.g. `/dns4/relay.example.com/tcp/443/tls/ws`).
   * @default the listen addresses
   */
  readonly announce?: readonly string[]
}

/** Browsers a relay holds a circuit slot for at once, unless told (each costs it a few streams while they signal). */
export const DEFAULT_MAX_RESERVATIONS = 1_024

/**
 * A Node libp2p node for relays and Node clients: TCP and WebSockets, Noise,
 * yamux, identify, gossipsub (signed messages, StrictSign). No discovery of
 * its own: peers are dialled from the group's known addresses.
 */
export async function createNodeLibp2p (init: NodeLibp2pInit): Promise<TidelineLibp2p> {
  const options = {
    privateKey: init.privateKey,
    addresses: { listen: [...init.listen], ...(init.announce === undefined || init.announce.length === 0 ? {} : { announce: [...init.announce] }) },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // libp2p refuses a host's 6th inbound connection within a second by default; on
    // loopback every client and relay is one host, and many tabs share a NAT address.
    connectionManager: { inboundConnectionThreshold: 100, maxIncomingPendingConnections: 64 },
    connectionGater: {
      denyInboundEncryptedConnection: (peerId: PeerId) => !init.allowPeer(peerId.toString()),
      denyOutboundEncryptedConnection: (peerId: PeerId) => !init.allowPeer(peerId.toString()),
      denyDialPeer: (peerId: PeerId) => !init.allowPeer(peerId.toString())
    }
  }
  const services = {
    identify: identify(),
    pubsub: gossipsub(GOSSIPSUB_OPTIONS)
  }
  // The relay service serves only; nothing calls it, so it stays out of TidelineLibp2p's type.
  if (init.relayServer === true) return createLibp2p({ ...options, services: { ...services, relay: circuitRelayServer({ reservations: { maxReservations: init.maxReservations ?? DEFAULT_MAX_RESERVATIONS } }) } })
  return createLibp2p({ ...options, services })
}
