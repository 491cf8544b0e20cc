import './polyfill.js'
import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { webRTC } from '@libp2p/webrtc'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdOf } from './addresses.js'
import { GOSSIPSUB_OPTIONS } from './gossip.js'
import { multiaddr } from '@multiformats/multiaddr'
import type { TidelineLibp2p } from './node.js'

// The browser entry point (`@tideline/net-libp2p/browser`): the browser libp2p
// config and the browser-safe parts of the package (no TCP, no Node APIs).
export { MAX_FRAME_BYTES, decodeFrame, encodeMessages } from './codec.js'
export { messageProtocol, MAX_BUNDLE, MessageTransport, watermarkTopic } from './transport.js'
export type { TransportInit } from './transport.js'
export * from './peer.js'

export interface BrowserLibp2pInit {
  readonly privateKey: PrivateKey
  /**
   * Whether a peer may connect at all, checked after the remote's id is
   * authenticated (Noise, or for WebRTC the Noise-secured relay circuit that
   * carried the signalling), both ways. Relays must be allowed too.
   */
  readonly allowPeer: (peerId: string) => boolean
  /**
   * Relay multiaddrs (WebSockets, ending in /p2p/<relay id>). The node keeps
   * a connection to each (redialled every second while missing) and holds a
   * reservation on as many of them as there are entries, so other browsers
   * can reach it at `<relay>/p2p-circuit/webrtc/p2p/<this id>`.
   * @default []
   */
  readonly relays?: readonly string[]
}

/** How often missing relay connections are redialled. */
const RELAY_REDIAL_MS = 1_000
const RELAY_DIAL_TIMEOUT_MS = 5_000

/**
 * A browser libp2p node: WebSockets to relays, WebRTC to other browsers
 * (signalled through a relay's circuit, then direct), Noise, yamux, identify,
 * gossipsub. The same services as the Node config, so `MessageTransport`
 * runs on it unchanged. Resolves once the first dial to every relay has
 * succeeded or failed; reservations follow within a round trip or two.
 */
export async function createBrowserLibp2p (init: BrowserLibp2pInit): Promise<TidelineLibp2p> {
  const allowed = (peerId: PeerId): boolean => init.allowPeer(peerId.toString())
  const relays = (init.relays ?? []).map(r => multiaddr(r))
  const node = await createLibp2p({
    privateKey: init.privateKey,
    addresses: {
      // One `/p2p-circuit` per wanted reservation: the relay transport
      // reserves a slot on relays as it connects to them (and again on
      // another one when a relay goes away), plus a WebRTC listener for the
      // signalling that arrives over those circuits. Not `<relay>/p2p-circuit`:
      // with more than one of those, circuit-relay-v2 4.2.13 drops the queued
      // reservations after the first and start() never resolves, and it
      // never renews them after a reconnect (js-libp2p#3601).
      listen: [...relays.map(() => '/p2p-circuit'), '/webrtc']
    },
    transports: [
      webSockets(),
      // No STUN: candidates are host addresses; public STUN would only add delay (and fail offline).
      webRTC({ rtcConfiguration: { iceServers: [] } }),
      circuitRelayTransport()
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      // libp2p's browser default refuses ws:// and loopback/private addresses;
      // this node dials only relays it was given and peers of its group, and
      // who they are is checked below once authenticated.
      denyDialMultiaddr: () => false,
      denyDialPeer: peerId => !allowed(peerId),
      denyInboundEncryptedConnection: peerId => !allowed(peerId),
      denyOutboundEncryptedConnection: peerId => !allowed(peerId)
    },
    services: {
      identify: identify(),
      pubsub: gossipsub(GOSSIPSUB_OPTIONS)
    }
  })
  const connectRelays = async (): Promise<void> => {
    await Promise.allSettled(relays.map(async ma => {
      const id = peerIdOf(ma)
      if (node.status !== 'started' || node.getConnections().some(c => c.remotePeer.toString() === id && c.limits === undefined)) return
      await node.dial(ma, { signal: AbortSignal.timeout(RELAY_DIAL_TIMEOUT_MS) })
    }))
  }
  if (relays.length > 0) {
    const timer = setInterval(() => { void connectRelays() }, RELAY_REDIAL_MS)
    node.addEventListener('stop', () => { clearInterval(timer) }, { once: true })
    await connectRelays()
  }
  return node
}
