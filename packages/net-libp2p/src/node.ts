import './polyfill.js'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify, type Identify } from '@libp2p/identify'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import type { PrivateKey } from '@libp2p/interface'

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
}

/**
 * A Node libp2p node for relays and Node clients: TCP and WebSockets, Noise,
 * yamux, identify, gossipsub (signed messages, StrictSign). No discovery of
 * its own: peers are dialled from the group's known addresses.
 */
export async function createNodeLibp2p (init: NodeLibp2pInit): Promise<TidelineLibp2p> {
  return createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: [...init.listen] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      denyInboundEncryptedConnection: peerId => !init.allowPeer(peerId.toString()),
      denyOutboundEncryptedConnection: peerId => !init.allowPeer(peerId.toString()),
      denyDialPeer: peerId => !init.allowPeer(peerId.toString())
    },
    services: {
      identify: identify(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false })
    }
  })
}
