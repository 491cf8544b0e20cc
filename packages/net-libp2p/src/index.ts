import './polyfill.js'

export { MAX_FRAME_BYTES, decodeFrame, encodeMessages } from './codec.js'
export { createNodeLibp2p } from './node.js'
export type { NodeLibp2pInit, TidelineLibp2p } from './node.js'
export { messageProtocol, MAX_BUNDLE, MessageTransport, watermarkTopic } from './transport.js'
export type { TransportInit } from './transport.js'
export type { NetPeerInit, SharedNode } from './net-peer.js'
export { NetClient } from './net-client.js'
export type { NetClientInit } from './net-client.js'
export { NetPeer, JOIN_GRACE_MS } from './net-peer.js'
export {
  createGenesis, verifyGenesis, configFromGenesis, genesisDigest, inviteDigest, createInvite, verifyInvite, encodeSigned, decodeSigned, MEMBER_ROLES, roleAllows, inviteRole
} from './membership.js'
export type { Genesis, SignedGenesis, Invite, SignedInvite, MemberRole } from './membership.js'
export { joinProtocol, requestJoin } from './join.js'
export { keepConnected, peerIdOf } from './addresses.js'
export { libp2pDecisionSigner, strictEd25519Key, perPeer } from './decision-keys.js'
