import './polyfill.js'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import {
  AbortError, QuorumUnavailableError, ValueTooLargeError, checkRangeRead, errorFromInfo, isKeyList, signCall, validateMessage,
  type DecisionSigner, type Message, type RangeRead, type ReadConsistency, type Revocation, type ReadResult, type SubmitRequest, type TxnResult
} from '@tideline/core'
import { peerIdOf } from './addresses.js'
import { createNodeLibp2p, type TidelineLibp2p } from './node.js'
import { MessageTransport } from './transport.js'
import { MAX_FRAME_BYTES, encodeMessages } from './codec.js'
import { requestJoin } from './join.js'
import { encodeSigned, type Genesis, type SignedInvite } from './membership.js'

export interface NetClientInit {
  readonly privateKey: PrivateKey
  /** Signs this client's calls in a group of signed calls. @default `privateKey` (libp2p's Ed25519) */
  readonly signer?: Pick<DecisionSigner, 'sign'>
  /** Voter multiaddrs, each ending in /p2p/<id>. */
  readonly voters: readonly string[]
  /** Presented to each voter on every connection; not needed if the voters admit this peer otherwise. */
  readonly invite?: SignedInvite
  /** The group creator's peer id: the genesis the voters send back must be signed by it. */
  readonly creator?: string
  /** The group to join (a relay may host many). @default the invite's */
  readonly group?: string
  /** How long one attempt waits for its voter before trying the next one. @default 2000 */
  readonly attemptTimeoutMs?: number
  /** Whole-call bound. @default 10000 */
  readonly timeoutMs?: number
  /**
   * Index in `voters` of the home voter, the one every call goes to until an
   * attempt there times out. @default a random one
   */
  readonly home?: number
}

/** Tries to reach and join each voter when starting. */
const JOIN_ATTEMPTS = 3

interface Pending<T> {
  readonly resolve: (v: T) => void
  readonly reject: (e: Error) => void
}

/**
 * A thin Node client for tests and benchmarks: it is not a replica. It sends
 * submissions and reads to its home voter and, when an attempt times out,
 * retries through the next voter with the same clientTxnId (so the effect
 * happens at most once and the answer is the first outcome), which becomes
 * the new home. An attempt does not wait out its timeout when the connection
 * to its voter closes (a relay killed or restarting): it goes on at once.
 * Keeping to one voter, as etcd's clients keep to one endpoint, lets the
 * transport bundle concurrent calls into one frame each way.
 */
export class NetClient {
  readonly id: string
  readonly node: TidelineLibp2p
  /** The group's genesis, as the voters sent it (checked). */
  readonly genesis: Genesis
  private readonly transport: MessageTransport
  private readonly voters: readonly string[]
  private readonly init: NetClientInit
  /** The invite's text form, presented with each signed call (encoded once). */
  private readonly inviteText: string | undefined
  private readonly calls = new Map<string, Pending<TxnResult>>()
  private readonly reads = new Map<string, Pending<ReadResult>>()
  private readonly revokes = new Map<string, Pending<number>>()
  private home: number
  private nextRead = 0
  /** Voter → how to give up the attempts waiting on it (its connection closed). */
  private readonly waitingOn = new Map<string, Set<() => void>>()
  /** Voter → this connection's join (settled: the voter knows this client as a member); none while not connected. */
  private readonly joins = new Map<string, Promise<void>>()
  private readonly join: (voter: string) => Promise<unknown>

  private constructor (id: string, genesis: Genesis, node: TidelineLibp2p, transport: MessageTransport, voters: readonly string[], init: NetClientInit, join: (voter: string) => Promise<unknown>) {
    this.join = join
    this.id = id
    this.genesis = genesis
    this.node = node
    this.transport = transport
    this.voters = voters
    this.init = init
    this.inviteText = init.invite === undefined ? undefined : encodeSigned(init.invite)
    this.home = init.home ?? Math.floor(Math.random() * voters.length)
  }

  /**
   * Dials every voter and joins through each (presenting the invite); fails
   * with the voters' refusal if none admits this peer.
   */
  static async start (init: NetClientInit): Promise<NetClient> {
    const id = peerIdFromPrivateKey(init.privateKey).toString()
    if (init.home !== undefined && !(Number.isInteger(init.home) && init.home >= 0 && init.home < init.voters.length)) {
      throw new RangeError(`home must index voters (0..${init.voters.length - 1}), got ${init.home}`)
    }
    if (init.group === undefined && init.invite === undefined) throw new TypeError('NetClient needs `invite`, or `group` (the group to join) when its voters admit it otherwise')
    const voterIds = init.voters.map(a => peerIdOf(a) ?? '')
    const allowed = new Set(voterIds)
    const node = await createNodeLibp2p({ privateKey: init.privateKey, listen: [], allowPeer: p => allowed.has(p) })
    const ref: { client?: NetClient } = {}
    // Given the creator, the genesis any member answers with is checked against it: a relay voted in after genesis
    // (or one that reads only) is as good a door as a genesis voter.
    const joinOptions = { ...(init.group === undefined ? {} : { group: init.group }), ...(init.invite === undefined ? {} : { invite: init.invite }), ...(init.creator === undefined ? {} : { creator: init.creator, anyMember: true }) }
    // Each voter gets a few tries (a relay that just started may be slow to answer); a refusal is final.
    const joins = await Promise.allSettled(init.voters.map(async (a, i) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await node.dial(multiaddr(a), { signal: AbortSignal.timeout(5_000) })
          return await requestJoin(node, voterIds[i] as string, joinOptions)
        } catch (err) {
          const name = (err as Error).name
          if (attempt >= JOIN_ATTEMPTS || name === 'NotMemberError' || name === 'InvalidCredentialError') throw err
        }
      }
    }))
    const first = joins.find(j => j.status === 'fulfilled')
    if (first === undefined) {
      await node.stop()
      const reasons = joins.map((j, i) => `${voterIds[i]}: ${((j as PromiseRejectedResult).reason as Error).name} ${((j as PromiseRejectedResult).reason as Error).message}`)
      const refusal = joins.map(j => (j as PromiseRejectedResult).reason as Error).find(e => e.name === 'NotMemberError' || e.name === 'InvalidCredentialError')
      if (refusal !== undefined) throw refusal
      throw new QuorumUnavailableError(`could not join through any voter: ${reasons.join('; ')}`)
    }
    const genesis = first.value.genesis
    const transport = new MessageTransport({ node, groupId: genesis.groupId, isMember: p => allowed.has(p), gossip: false, deliver: (from, m) => { ref.client?.receive(from, m) } })
    await transport.start()
    // Rejoin after every reconnect: a restarted voter has forgotten who joined.
    node.addEventListener('peer:connect', e => {
      const p = e.detail.toString()
      if (allowed.has(p)) void ref.client?.joining(p)
    })
    node.addEventListener('peer:disconnect', e => { ref.client?.lost(e.detail.toString()) })
    const client = new NetClient(id, genesis, node, transport, voterIds, init, async p => requestJoin(node, p, joinOptions))
    joins.forEach((j, i) => { if (j.status === 'fulfilled') client.joins.set(voterIds[i] as string, Promise.resolve()) })
    ref.client = client
    return client
  }

  /** A new connection to `voter`: join on it (a restarted voter has forgotten this client). */
  private joining (voter: string): Promise<void> {
    let j = this.joins.get(voter)
    if (j === undefined) {
      j = this.join(voter).then(() => {}, () => {})
      this.joins.set(voter, j)
    }
    return j
  }

  /**
   * Whether `voter` can take a request now: connected, and joined on this
   * connection (a request that raced ahead of the join would be refused as
   * a non-member's and dropped). Dials it when not connected; false when
   * that fails (it is down: the attempt goes on to the next voter at once).
   */
  private async ready (voter: string): Promise<boolean> {
    const joined = this.joins.get(voter)
    if (joined !== undefined) {
      await joined
      return true
    }
    try {
      await this.node.dial(peerIdFromString(voter), { signal: AbortSignal.timeout(this.init.attemptTimeoutMs ?? 2_000) })
    } catch {
      return false
    }
    await this.joining(voter)
    return true
  }

  /** The connection to `voter` closed: the attempts waiting on it go on to the next voter now. */
  private lost (voter: string): void {
    this.joins.delete(voter)
    if (this.voters[this.home] === voter) this.home = (this.home + 1) % this.voters.length
    // Each one leaves the set as it gives up (deleting the entry being visited is safe in a Set's iteration).
    for (const giveUp of this.waitingOn.get(voter) ?? []) giveUp()
  }

  private receive (from: string, raw: unknown): void {
    let m: Message
    try {
      m = validateMessage(raw)
    } catch {
      return
    }
    if (!this.voters.includes(from)) return
    if (m.t === 'submit-rep') {
      const p = this.calls.get(m.clientTxnId)
      if (p === undefined) return
      if (m.result !== undefined) p.resolve(m.result)
      // A voter that could not reach a quorum in time: the next attempt goes elsewhere.
      else if (m.error !== undefined && m.error.name !== 'QuorumUnavailableError') p.reject(errorFromInfo(m.error))
    } else if (m.t === 'read-rep') {
      const p = this.reads.get(m.reqId)
      if (p === undefined) return
      if (m.result !== undefined) p.resolve(m.result)
      else if (m.error !== undefined) p.reject(errorFromInfo(m.error))
    } else if (m.t === 'revoke-rep') {
      const p = this.revokes.get(m.reqId)
      if (p === undefined) return
      if (m.epoch !== undefined) p.resolve(m.epoch)
      // A voter that is not one any more, or could not get the change through: the next attempt goes elsewhere.
      else if (m.error !== undefined && m.error.name !== 'QuorumUnavailableError') p.reject(errorFromInfo(m.error))
    }
  }

  /** Runs a transaction; retries through other voters with the same clientTxnId until `timeoutMs`. */
  async call (submitted: SubmitRequest, options: { signal?: AbortSignal } = {}): Promise<TxnResult> {
    // Dated once here, so every retry through another voter carries the first attempt's time (and, in a group of
    // signed calls, signed once: the date is part of what is signed).
    const dated = { ...submitted, firstAt: submitted.firstAt ?? Date.now() }
    const req = this.genesis.signedCalls === true && dated.caller === undefined
      ? await signCall(this.genesis.groupId, this.id, this.init.signer ?? this.init.privateKey, dated, this.inviteText)
      : dated
    const message: Message = { t: 'submit', req, replyTo: this.id }
    // A submission no frame can carry never reaches a voter to be refused there: it is refused here, at once.
    const bytes = encodeMessages([message]).byteLength
    if (bytes > MAX_FRAME_BYTES) throw new ValueTooLargeError(`the call encodes to ${bytes} bytes, more than a peer takes in one frame (${MAX_FRAME_BYTES})`)
    return this.attempt(this.calls, req.clientTxnId, options.signal, undefined, to => { this.transport.send(to, message) })
  }

  /**
   * Reads keys, or a range (`{ range: { start, end? }, limit?, reverse? }`:
   * the result's `entries` in order), through any voter (or only `voter`, to
   * see that replica's state).
   */
  async read (keys: readonly string[] | RangeRead, consistency: ReadConsistency = 'strict', options: { signal?: AbortSignal, voter?: string } = {}): Promise<ReadResult> {
    const reqId = `${this.id.slice(-8)}-${this.nextRead++}`
    const what = isKeyList(keys) ? { keys } : { keys: [], range: checkRangeRead(keys) }
    return this.attempt(this.reads, reqId, options.signal, options.voter, to => {
      this.transport.send(to, { t: 'read', reqId, ...what, consistency, replyTo: this.id })
    })
  }

  /**
   * Asks the voters to revoke members (`{ kind: 'peer', id }`) and invites
   * (`{ kind: 'invite', id: await inviteDigest(invite) }`), in one epoch
   * change; resolves with the epoch from which the group's configuration
   * holds them (a member and the bearer invite it came in with, say). Only an admin's
   * request is taken (PermissionDeniedError otherwise): the creator, or a
   * holder of an admin invite.
   */
  async revoke (targets: readonly Revocation[], options: { signal?: AbortSignal } = {}): Promise<number> {
    const reqId = `${this.id.slice(-8)}-v${this.nextRead++}`
    return this.attempt(this.revokes, reqId, options.signal, undefined, to => {
      this.transport.send(to, { t: 'revoke', reqId, targets })
    })
  }

  private async attempt<T> (table: Map<string, Pending<T>>, key: string, signal: AbortSignal | undefined, only: string | undefined, sendTo: (voter: string) => void): Promise<T> {
    const deadline = Date.now() + (this.init.timeoutMs ?? 10_000)
    const per = this.init.attemptTimeoutMs ?? 2_000
    try {
      for (;;) {
        if (signal?.aborted === true) throw new AbortError('call aborted')
        const left = deadline - Date.now()
        if (left <= 0) throw new QuorumUnavailableError(`no answer from any voter within ${this.init.timeoutMs ?? 10_000} ms; retry with the same clientTxnId`)
        const at = this.home
        const voter = only ?? this.voters[at] ?? ''
        const waiting = this.waitingOn.get(voter) ?? new Set<() => void>()
        this.waitingOn.set(voter, waiting)
        let giveUp = (): void => {}
        const got = await new Promise<{ value: T } | undefined>((resolve, reject) => {
          const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); waiting.delete(giveUp) }
          const timer = setTimeout(() => { done(); resolve(undefined) }, Math.min(per, left))
          const onAbort = (): void => { done(); reject(new AbortError('call aborted')) }
          giveUp = () => { done(); resolve(undefined) }
          waiting.add(giveUp)
          signal?.addEventListener('abort', onAbort, { once: true })
          table.set(key, {
            resolve: v => { done(); resolve({ value: v }) },
            reject: e => { done(); reject(e) }
          })
          void this.ready(voter).then(ok => { if (!ok) giveUp(); else if (waiting.has(giveUp)) sendTo(voter) })
        })
        if (got !== undefined) return got.value
        // The first call to time out there moves everyone on; the others follow, not skip ahead.
        if (only === undefined && this.home === at) this.home = (at + 1) % this.voters.length
      }
    } finally {
      table.delete(key)
    }
  }

  async stop (): Promise<void> {
    await this.transport.stop()
    await this.node.stop()
  }
}
