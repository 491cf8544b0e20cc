import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { Peer, ProcedureHashMismatchError, type DecisionSigner, type Logger, type ProcedureRegistry, type RunApplier, type Store } from '@tideline/core'
import { dialAt, keepConnected, keepReachableThrough, peerIdOf } from './addresses.js'
import type { TidelineLibp2p } from './node.js'
import { MessageTransport } from './transport.js'
import { inviteReader } from './invite-reader.js'
import { configFromGenesis, encodeSigned, genesisDigest, roleAllows, verifyGenesis, type Genesis, type MemberRole, type SignedGenesis, type SignedInvite } from './membership.js'
import { requestJoin, serveJoin } from './join.js'
import { libp2pDecisionSigner } from './decision-keys.js'
import { Members } from './members.js'

export interface NetPeerInit {
  readonly privateKey: PrivateKey
  /** The group's signed genesis configuration (voters, registry); checked on start. */
  readonly genesis: SignedGenesis
  /** For a peer that is not a voter: the invite it presents to every voter it reaches. */
  readonly invite?: SignedInvite
  readonly registry: ProcedureRegistry
  readonly store: Store
  /** Evaluates runs of thunks. @default in-process against `store` */
  readonly applier?: RunApplier
  /**
   * Builds and starts the libp2p node (Node: `createNodeLibp2p`, browser:
   * `createBrowserLibp2p`). Any authenticated peer may connect: until it is
   * a member it can only speak the join protocol.
   */
  readonly createNode?: (privateKey: PrivateKey) => Promise<TidelineLibp2p>
  /**
   * Instead of `createNode`: a started libp2p node this process shares
   * between the groups it hosts (a relay of many groups). The group speaks
   * its own protocols on it and leaves it running when it stops.
   */
  readonly shared?: SharedNode
  /** Multiaddrs (ending in /p2p/<id>) of peers to stay connected to: the other voters. */
  readonly peers?: readonly string[]
  /**
   * Relays (WebSockets multiaddrs, for a browser) through which the current
   * voters that have no address in `peers` are reached by id, over WebRTC
   * signalled through the relay's circuit: a group whose voters are tabs,
   * the relay no member of it (docs/design/tabs.md §4). @default none
   */
  readonly relays?: readonly string[]
  /**
   * Non-voters admitted without an invite (an operator's allow list); voters
   * and peers that joined with a valid invite always are.
   */
  readonly admit?: (peerId: string) => boolean
  readonly logger?: Logger
  /** Whether to follow watermark gossip (voters should; an observer hears voters directly). @default true */
  readonly gossip?: boolean
  /** How long a connected non-member has to present an invite before it is disconnected. @default 5000 */
  readonly joinGraceMs?: number
  /** How often an idle voter publishes its watermark entry (its heartbeat); busy, the protocol's timers run every few ms. @default 500 */
  readonly idleHeartbeatMs?: number
  /** How long a voter idles before it goes quiet (no heartbeat until woken; see PeerInit). @default 2000 */
  readonly quiesceAfterMs?: number
  /** Busy voters' entries through one hub voter in groups of 4 or more (see PeerInit). @default true */
  readonly entryHub?: boolean
  /** Most calls this peer takes as a voter per second; beyond it RateLimitedError (see PeerInit). @default unlimited */
  readonly maxCallsPerSec?: number
  /** While not a voter, ask the voters to be added (relays). @default false */
  readonly candidate?: boolean
  /** In a partitioned group, the partitions this peer follows while it is not a voter (see PeerInit). @default every one */
  readonly partitions?: readonly number[]
  /**
   * Candidates this peer, as a voter, votes into the next epoch besides those
   * whose invite grants the `voter` role (or `admin`; genesis voters always
   * may be): an operator's list. @default none besides the granted
   */
  readonly admitVoter?: (peerId: string) => boolean
  /** The failure detector's bounds (see PeerInit): the longest silence, and the least. @default 2000, 500 */
  readonly suspectMs?: number
  readonly suspectMinMs?: number
  /** How much history below the group's durable frontier to keep (see PeerInit). */
  readonly retainMs?: number
  /**
   * This peer's keys for decisions and signed calls. @default libp2p's Ed25519
   * on `privateKey` (a Node host passes a faster one on OpenSSL key objects:
   * `nodeDecisionSigner` in `@tideline/relay`)
   */
  readonly signer?: DecisionSigner
  /** The protocol's clock. @default Date.now (a fault injector offsets it to jump or skew the clock) */
  readonly clock?: { now(): number }
  /**
   * What happens to messages from `from` on their way in: nothing (undefined), dropped, or delayed.
   * For a fault injector (`tideline-relay run --nemesis`): a link cut or slowed one way is its
   * receiver's doing, so one side's setting cuts one direction and both sides' cut both.
   */
  readonly inbound?: (from: string) => 'drop' | number | undefined
  /**
   * The dissemination tree (issue 23; core's tree.ts): `join`, as an observer
   * of every partition, hang under a voter or another member and get batches
   * and watermark entries through it, not from every voter (it then dials the
   * member it is pointed at); `slots`, most members this one serves there
   * (an observer; default 3); `rootSlots`, most a voter serves (default 1).
   */
  readonly tree?: { readonly join?: boolean, readonly slots?: number, readonly rootSlots?: number }
}

/**
 * A libp2p node shared by the groups one process hosts. A connected peer
 * that is a member of any of them stays connected: a group hangs up only on
 * peers that belong to none (`member`), and the node is the host's to stop.
 */
export interface SharedNode {
  readonly node: TidelineLibp2p
  /** Whether `peerId` is a member of some group hosted on this node. */
  readonly member: (peerId: string) => boolean
}

/** How long a stopping peer waits for what it sent last to be written. */
const STOP_DRAIN_MS = 1_000

/** A connected peer that is not a member by then (no valid invite presented) is disconnected. */
export const JOIN_GRACE_MS = 5_000
/** A join that got no answer is tried this many times, 1 s, 2 s, … apart, while the peer stays connected. */
const JOIN_ATTEMPTS = 6
const JOIN_RETRY_MS = 1_000

/**
 * A protocol peer on libp2p: the core `Peer` (clock: `Date.now`), its
 * transport, the protocol timers, and connections kept to the given peers.
 * Browser-safe: the libp2p node comes from `createNode`.
 *
 * `open` is local-first: it resolves once the peer has recovered from its
 * store (so local reads answer at once), and brings the network up in the
 * background (`online`). `start` waits for the network as well.
 */
export class NetPeer {
  readonly id: string
  readonly genesis: Genesis
  readonly peer: Peer
  /** Settles when the libp2p node and transport are up (rejects if they could not start). */
  readonly online: Promise<void>
  private net: { node: TidelineLibp2p, transport: MessageTransport, shared: boolean, detach: () => Promise<void> } | undefined
  /** Stops keeping the configured peers connected. */
  private disconnect: () => void = () => {}
  private readonly peers: readonly string[]
  private stopped = false

  private readonly members: Members

  private constructor (id: string, genesis: Genesis, peer: Peer, members: Members, peers: readonly string[], start: (self: NetPeer) => Promise<void>) {
    this.id = id
    this.genesis = genesis
    this.peer = peer
    this.members = members
    this.peers = peers
    this.online = start(this)
    this.online.catch(() => {})
  }

  /** The role `peerId` holds as this peer knows it (from the genesis, the current voters, or the invite it presented); undefined for a peer it does not know as a member. */
  roleOf (peerId: string): MemberRole | undefined {
    return this.members.roleOf(peerId)
  }

  /** Whether `peerId` is a member of this group as this peer knows it (a voter, or admitted). */
  isMember (peerId: string): boolean {
    return this.members.isMember(peerId)
  }

  /** The libp2p node; throws until `online` has settled. */
  get node (): TidelineLibp2p {
    if (this.net === undefined) throw new Error('the network is not up yet (await online)')
    return this.net.node
  }

  get transport (): MessageTransport {
    if (this.net === undefined) throw new Error('the network is not up yet (await online)')
    return this.net.transport
  }

  /** Voters of the current epoch this peer has a connection to now (0 before the network is up). */
  connectedVoters (): number {
    return this.connectedOf(this.peer.config.voters)
  }

  /** Of the peers this one was given (`peers`: the relays, for a tab), how many it has a connection to now. */
  connectedPeers (): number {
    return this.connectedOf(this.peers.map(peerIdOf).filter(p => p !== undefined))
  }

  private connectedOf (ids: readonly string[]): number {
    if (this.net === undefined || this.net.node.status !== 'started') return 0
    const seen = new Set<string>()
    for (const c of this.net.node.getConnections()) {
      const p = c.remotePeer.toString()
      if (ids.includes(p)) seen.add(p)
    }
    return seen.size
  }

  /** Opens the peer on its store and brings the network up, resolving when both are done. */
  static async start (init: NetPeerInit): Promise<NetPeer> {
    const net = await NetPeer.open(init)
    try {
      await net.online
    } catch (err) {
      await net.stop()
      throw err
    }
    return net
  }

  /** Opens the peer on its store; the network comes up in the background (`online`). */
  static async open (init: NetPeerInit): Promise<NetPeer> {
    const id = peerIdFromPrivateKey(init.privateKey).toString()
    const genesis = await verifyGenesis(init.genesis)
    if (genesis.registryHash !== init.registry.hash) {
      const mine = [...init.registry.procedures.values()].map(p => `${p.name} ${p.hash.slice(0, 12)}`).join(', ')
      throw new ProcedureHashMismatchError(`this peer's procedures hash to ${init.registry.hash}, but group ${genesis.groupId} runs procedures ${genesis.registryHash}. This peer's: ${mine}. Compare with the group's (tideline-relay hash --each --procedures <the relays' module>), then open with the procedures the group runs, or start the group's relays with this app's procedures module (tideline-relay run --procedures <module>)`)
    }
    const config = configFromGenesis(genesis, await genesisDigest(init.genesis.body))
    const ref: { transport?: MessageTransport, contacts?: () => string[], peer?: Peer, node?: TidelineLibp2p } = {}
    const members = new Members(genesis, () => ref.peer?.config.voters ?? [], p => init.admit?.(p) ?? false, () => ref.peer?.config.revoked ?? [])
    const peer = await Peer.open({
      id,
      config,
      registry: init.registry,
      store: init.store,
      clock: init.clock ?? { now: () => Date.now() },
      // The protocol arms its own timer for when its next timeout is due (no fixed tick).
      selfTimed: true,
      // Until the network is up messages are dropped; the protocol retransmits.
      send: (to, m) => { ref.transport?.send(to, m) },
      // Decisions carry their accepting majority's signatures (this peer signs what it accepts), so any member may pass one on.
      signer: init.signer ?? libp2pDecisionSigner(init.privateKey),
      contacts: () => ref.contacts?.() ?? [],
      // Its calls present its invite; the calls it evaluates are checked against theirs.
      readInvite: inviteReader(),
      ...(init.invite === undefined ? {} : { invite: encodeSigned(init.invite) }),
      ...(init.applier === undefined ? {} : { applier: init.applier }),
      ...(init.logger === undefined ? {} : { logger: init.logger }),
      ...(init.candidate === undefined ? {} : { candidate: init.candidate }),
      ...(init.partitions === undefined ? {} : { partitions: init.partitions }),
      // Roles come from invites: only a voter grant (or the operator's list) makes a candidate admissible,
      // and a reader's submissions are refused.
      admitVoter: p => roleAllows(members.roleOf(p), 'voter') || (init.admitVoter?.(p) ?? false),
      mayCall: p => roleAllows(members.roleOf(p), 'writer'),
      mayRevoke: p => members.roleOf(p) === 'admin',
      ...(init.suspectMs === undefined ? {} : { suspectMs: init.suspectMs }),
      ...(init.suspectMinMs === undefined ? {} : { suspectMinMs: init.suspectMinMs }),
      ...(init.idleHeartbeatMs === undefined ? {} : { idleHeartbeatMs: init.idleHeartbeatMs }),
      ...(init.quiesceAfterMs === undefined ? {} : { quiesceAfterMs: init.quiesceAfterMs }),
      ...(init.entryHub === undefined ? {} : { entryHub: init.entryHub }),
      ...(init.maxCallsPerSec === undefined ? {} : { maxCallsPerSec: init.maxCallsPerSec }),
      ...(init.retainMs === undefined ? {} : { retainMs: init.retainMs }),
      // In the tree, where others reach this peer (its listen addresses) and how it dials a parent.
      tree: {
        ...init.tree,
        addresses: () => ref.node?.status === 'started' ? ref.node.getMultiaddrs().map(String) : [],
        connect: (p, addrs) => { if (ref.node !== undefined) dialAt(ref.node, p, addrs) },
        // A member struck out for forging what it passed on: hung up on (it is not listened to for a minute either).
        // (On a shared node, kept while another group hosted there has it as a member.)
        disconnect: p => { if (ref.node?.status === 'started' && init.shared?.member(p) !== true) ref.node.hangUp(peerIdFromString(p)).catch(() => {}) }
      }
    })
    ref.peer = peer
    const net = new NetPeer(id, genesis, peer, members, init.peers ?? [], async self => {
      const up = await connectNetwork(init, id, genesis, peer, members)
      if (self.stopped) {
        await up.detach()
        await up.transport.stop()
        if (!up.shared) await up.node.stop()
        return
      }
      ref.transport = up.transport
      ref.contacts = up.contacts
      ref.node = up.node
      self.net = up
      const stopKeeping = keepConnected(up.node, self.peers, self.id)
      const addressed = new Set(self.peers.map(peerIdOf))
      const stopReaching = keepReachableThrough(up.node, init.relays ?? [], () => peer.config.voters.filter(v => !addressed.has(v)), self.id)
      self.disconnect = () => { stopKeeping(); stopReaching() }
    })
    return net
  }

  /** Listen addresses, each ending in /p2p/<id>. */
  addresses (): string[] {
    return this.node.getMultiaddrs().map(String)
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.disconnect()
    await this.peer.close()
    await this.online.catch(() => {})
    if (this.net !== undefined) {
      // What the peer sent last (an epoch change it led as it handed over) goes out before the streams close.
      await this.net.transport.drain(STOP_DRAIN_MS)
      await this.net.detach()
      await this.net.transport.stop()
      if (!this.net.shared) await this.net.node.stop()
    }
  }
}

/** Starts libp2p, the transport, the join service (voters) or joining (observers), and the non-member grace. */
async function connectNetwork (init: NetPeerInit, id: string, genesis: Genesis, peer: Peer, members: Members): Promise<{ node: TidelineLibp2p, transport: MessageTransport, contacts: () => string[], shared: boolean, detach: () => Promise<void> }> {
  const voters = new Set(genesis.voters)
  // Voters added by an epoch change are members too (they joined before being voted in).
  const isMember = (p: string): boolean => members.isMember(p)
  // On a shared node, a peer that belongs to another group hosted there keeps its connection; so do the relays that
  // carry a group of tabs (`relays`: members of nothing, they signal WebRTC and hold the circuits).
  const relays = new Set((init.relays ?? []).map(peerIdOf).filter(p => p !== undefined))
  const keep = (p: string): boolean => isMember(p) || relays.has(p) || (init.shared?.member(p) ?? false)
  if (init.shared === undefined && init.createNode === undefined) throw new TypeError('NetPeer needs `createNode` or `shared`')
  const node = init.shared?.node ?? await (init.createNode as (k: PrivateKey) => Promise<TidelineLibp2p>)(init.privateKey)
  // What this group added to the node, removed when it stops (a shared node runs on).
  const events = node as unknown as { addEventListener(type: string, fn: (e: Event) => void): void, removeEventListener(type: string, fn: (e: Event) => void): void }
  const listeners: Array<[string, (e: Event) => void]> = []
  let detached = false
  const listen = <E extends Event>(type: string, fn: (e: E) => void): void => {
    listeners.push([type, fn as (e: Event) => void])
    events.addEventListener(type, fn as (e: Event) => void)
  }
  const transport = new MessageTransport({
    node,
    groupId: genesis.groupId,
    isMember,
    isRevoked: p => members.cutOff(p),
    deliver: init.inbound === undefined ? (from, m) => { peer.receive(from, m) } : faultyDelivery(init.inbound, (from, m) => { peer.receive(from, m) }),
    ...(init.gossip === undefined ? {} : { gossip: init.gossip }),
    ...(init.logger === undefined ? {} : { logger: init.logger })
  })
  await transport.start()
  const count = (name: string): void => { transport.count(name) }
  // Every member serves the join handshake: a relay voted in after genesis admits invited peers too.
  const unserveJoin = await serveJoin({
    node,
    signedGenesis: init.genesis,
    genesis,
    digest: await genesisDigest(init.genesis.body),
    isMember,
    admit: (p, role, digest, expiresAt) => { members.admit(p, role, digest, expiresAt) },
    isRevoked: p => members.isRevoked(p),
    inviteRevoked: d => members.inviteRevoked(d),
    count,
    ...(init.logger === undefined ? {} : { logger: init.logger })
  })
  const grace = (remote: string): void => {
    if (keep(remote)) return
    const t = setTimeout(() => {
      if (keep(remote) || node.status !== 'started') return
      count('hung-up-non-member')
      node.hangUp(peerIdFromString(remote)).catch(() => {})
    }, init.joinGraceMs ?? JOIN_GRACE_MS)
    ;(t as { unref?: () => void }).unref?.()
  }
  listen<CustomEvent<{ remotePeer: { toString(): string } }>>('connection:open', e => { grace(e.detail.remotePeer.toString()) })
  // A member the group revoked (or whose invite it revoked) is hung up on once this peer installs the epoch that says so.
  peer.onEpoch(() => {
    for (const p of new Set(node.getConnections().map(c => c.remotePeer.toString()))) {
      // Cut off here; on a shared node, kept while another group hosted there has it as a member.
      if (!members.cutOff(p) || (init.shared?.member(p) ?? false)) continue
      count('hung-up-revoked')
      init.logger?.('hung-up-revoked', { peer: p })
      node.hangUp(peerIdFromString(p)).catch(() => {})
    }
  })
  if (!voters.has(id)) {
    // A peer not in the genesis presents its invite to each peer it connects to (again after every
    // reconnect): the voters it knows, and any other, which may be a voter of an epoch it has not
    // heard of yet (one that joined while this peer was away, or is voted in later).
    // A join that failed for want of an answer (the peer's group not up yet: a relay that has just started, or
    // adds the group later) is tried again while connected; a refusal is final.
    const join = (p: string, attempt = 1): void => {
      requestJoin(node, p, { group: genesis.groupId, creator: genesis.creator, anyMember: true, ...(init.invite === undefined ? {} : { invite: init.invite }) })
        .then(() => { count('joined-voter') }, (err: unknown) => {
          const e = err as Error
          count('join-failed')
          init.logger?.('join-failed', { voter: p, attempt, error: e.message })
          if (e.name === 'NotMemberError' || e.name === 'InvalidCredentialError' || attempt >= JOIN_ATTEMPTS) return
          const t = setTimeout(() => { if (!detached && node.status === 'started' && connected().has(p)) join(p, attempt + 1) }, JOIN_RETRY_MS * attempt)
          ;(t as { unref?: () => void }).unref?.()
        })
    }
    listen<CustomEvent<{ toString(): string }>>('peer:connect', e => { join(e.detail.toString()) })
    const connected = (): Set<string> => new Set(node.getConnections().map(c => c.remotePeer.toString()))
    // An epoch that adds a voter presents the invite to it again (a retry, if the first presentation failed).
    peer.onEpoch(e => { for (const p of connected()) if (!voters.has(p) && e.voters.includes(p)) join(p) })
    // Connections made while the node started (a browser dials its relays then) had no listener yet.
    for (const p of connected()) join(p)
  }
  // The peers this peer is connected to: who it asks how the group went on when its epoch's voters are all silent
  // (a member that joined after this peer's epoch is not known as one yet; its answer carries its own proof).
  const contacts = (): string[] => [...new Set(node.getConnections().map(c => c.remotePeer.toString()))]
  const detach = async (): Promise<void> => {
    detached = true
    for (const [type, fn] of listeners) events.removeEventListener(type, fn)
    await unserveJoin()
  }
  return { node, transport, contacts, shared: init.shared !== undefined, detach }
}

/** Delivery through an injected link fault: each message from `from` is dropped, delayed (in order), or passed on. */
function faultyDelivery (inbound: (from: string) => 'drop' | number | undefined, deliver: (from: string, m: unknown) => void): (from: string, m: unknown) => void {
  return (from, m) => {
    const fault = inbound(from)
    if (fault === 'drop') return
    if (fault === undefined || fault <= 0) deliver(from, m)
    else setTimeout(() => { deliver(from, m) }, fault)
  }
}
