import { decode, encode } from 'cborg'
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Stream } from '@libp2p/interface'
import { InvalidCredentialError, NotMemberError, errorFromInfo, type Logger } from '@tideline/core'
import { inviteDigest, inviteGroup, inviteRole, verifyGenesis, verifyInvite, type Genesis, type MemberRole, type SignedGenesis, type SignedInvite } from './membership.js'
import type { TidelineLibp2p } from './node.js'

/**
 * The join handshake, on a protocol id of its own per group (one libp2p node
 * may host many groups) so it is the one thing a peer that is not (yet) a
 * member may speak. The joiner sends one frame
 * `{ invite?: { body, sig } }`; the voter answers `{ ok: true, genesis }`
 * (the signed genesis, so the joiner learns the voters and checks the
 * creator) or `{ ok: false, error: { name, message } }`. A member (voter or
 * already admitted) needs no invite.
 */
export function joinProtocol (groupId: string): string {
  return `/tideline/${groupId}/join/2.0.0`
}
const MAX_JOIN_FRAME = 64 * 1024
const JOIN_TIMEOUT_MS = 5_000
const DECODE = { strict: true, allowIndefinite: false, allowUndefined: false, allowBigInt: false, rejectDuplicateMapKeys: true, useMaps: false } as const

export interface JoinServerInit {
  readonly node: TidelineLibp2p
  readonly signedGenesis: SignedGenesis
  readonly genesis: Genesis
  readonly digest: string
  readonly isMember: (peerId: string) => boolean
  /** Called once an invite checked out for `peerId`, with the role it grants, its digest and its expiry. */
  readonly admit: (peerId: string, role: MemberRole, digest: string, expiresAt: number) => void
  /** Whether the group revoked this peer, or the invite of this digest: either is refused. */
  readonly isRevoked: (peerId: string) => boolean
  readonly inviteRevoked: (digest: string) => boolean
  readonly count: (name: string) => void
  readonly logger?: Logger
}

/** Serves the join handshake of the group on a member; returns what stops serving it (a group removed from a shared node). */
export async function serveJoin (init: JoinServerInit): Promise<() => Promise<void>> {
  const protocol = joinProtocol(init.genesis.groupId)
  await init.node.handle(protocol, (stream, connection) => { void answerJoin(init, stream, connection) }, { maxInboundStreams: 2 })
  return async () => { await init.node.unhandle(protocol) }
}

async function answerJoin (init: JoinServerInit, stream: Stream, connection: Connection): Promise<void> {
  const from = connection.remotePeer.toString()
  const lp = lpStream(stream, { maxDataLength: MAX_JOIN_FRAME })
  const reply = async (r: Record<string, unknown>): Promise<void> => { await lp.write(encode(r), { signal: AbortSignal.timeout(JOIN_TIMEOUT_MS) }) }
  try {
    const frame = await lp.read({ signal: AbortSignal.timeout(JOIN_TIMEOUT_MS) })
    let req: unknown
    try {
      req = decode(frame.subarray(), DECODE)
    } catch (err) {
      throw new InvalidCredentialError(`join request does not decode: ${(err as Error).message}`)
    }
    if (typeof req !== 'object' || req === null) throw new InvalidCredentialError('join request must be a map')
    // An invite is checked whenever one comes (a member may bring one that grants more); a member needs none.
    const invite = (req as { invite?: unknown }).invite
    if (init.isRevoked(from)) throw new NotMemberError(`${from} was revoked from ${init.genesis.groupId}`)
    if (typeof invite === 'object' && invite !== null) {
      const inv = await verifyInvite(invite as SignedInvite, init.genesis, init.digest, from, Date.now())
      const digest = await inviteDigest(invite as SignedInvite)
      if (init.inviteRevoked(digest) || init.isRevoked(inv.issuer)) throw new NotMemberError(`invite ${digest.slice(0, 16)}… (or its issuer) was revoked from ${init.genesis.groupId}`)
      init.admit(from, inviteRole(inv), digest, inv.expiresAt)
      init.count('joined')
      init.logger?.('joined', { peer: from, role: inviteRole(inv) })
    } else if (!init.isMember(from)) {
      throw new NotMemberError(`${from} is not a member of ${init.genesis.groupId} and brought no invite`)
    }
    await reply({ ok: true, genesis: { body: init.signedGenesis.body, sig: init.signedGenesis.sig } })
    await stream.close()
  } catch (err) {
    const e = err as Error
    init.count('join-refused')
    init.logger?.('join-refused', { peer: from, error: e.message })
    const name = e.name === 'NotMemberError' || e.name === 'InvalidCredentialError' ? e.name : 'InvalidMessageError'
    try {
      await reply({ ok: false, error: { name, message: e.message } })
      await stream.close()
    } catch {
      stream.abort(e)
    }
  }
}

/**
 * Joins through the voter `voter` (already dialled or dialable by id):
 * presents `invite` if given and returns the group's genesis, checked
 * against `creator` when given. Refusals throw NotMemberError or
 * InvalidCredentialError. `group`: the group to join (its join protocol;
 * @default the invite's). `anyMember`: the peer answering need not be a
 * voter this peer knows of (a peer presenting its invite to every member it
 * meets; the genesis is still checked).
 */
export async function requestJoin (node: TidelineLibp2p, voter: string, options: { group?: string, invite?: SignedInvite, creator?: string, signal?: AbortSignal, anyMember?: boolean } = {}): Promise<{ signedGenesis: SignedGenesis, genesis: Genesis }> {
  const signal = options.signal ?? AbortSignal.timeout(JOIN_TIMEOUT_MS)
  const group = options.group ?? (options.invite === undefined ? undefined : inviteGroup(options.invite))
  if (group === undefined) throw new TypeError('requestJoin needs the group id (`group`), or an invite that names it')
  const stream = await node.dialProtocol(peerIdFromString(voter), joinProtocol(group), { signal })
  const lp = lpStream(stream, { maxDataLength: MAX_JOIN_FRAME })
  try {
    await lp.write(encode(options.invite === undefined ? {} : { invite: { body: options.invite.body, sig: options.invite.sig } }), { signal })
    const rep = decode((await lp.read({ signal })).subarray(), DECODE) as { ok?: unknown, genesis?: SignedGenesis, error?: { name: string, message: string } }
    if (rep.ok !== true) {
      const info = rep.error
      throw typeof info?.name === 'string' && typeof info.message === 'string' ? errorFromInfo(info) : new NotMemberError(`join refused by ${voter}`)
    }
    if (typeof rep.genesis !== 'object' || rep.genesis === null) throw new InvalidCredentialError('join reply has no genesis')
    const genesis = await verifyGenesis(rep.genesis, options.creator)
    if (genesis.groupId !== group) throw new InvalidCredentialError(`${voter} answered for group ${genesis.groupId}, not ${group}`)
    // A genesis voter answers for its group; with `anyMember`, so may any member (the genesis is checked all the same).
    if (options.anyMember !== true && !genesis.voters.includes(voter)) throw new InvalidCredentialError(`${voter} answered for a group it is not a voter of`)
    return { signedGenesis: rep.genesis, genesis }
  } finally {
    await stream.close().catch(() => { stream.abort(new Error('join done')) })
  }
}
