// The transport-free entry point (`@tideline/net-libp2p/peer`): NetPeer and
// group membership, for hosts that bring their own libp2p node (the browser
// database lazily loads `./browser` for it; Node code uses `createNodeLibp2p`).
export { NetPeer, JOIN_GRACE_MS } from './net-peer.js'
export type { NetPeerInit } from './net-peer.js'
export { configFromGenesis, createGenesis, createInvite, verifyGenesis, verifyInvite, decodeSigned, encodeSigned, inviteDigest } from './membership.js'
export type { Genesis, SignedGenesis, Invite, SignedInvite, MemberRole } from './membership.js'
export { joinProtocol, requestJoin } from './join.js'
export type { TidelineLibp2p } from './node.js'
export { peerIdOf } from './addresses.js'
