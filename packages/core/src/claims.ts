import type { Caller } from './procedures.js'
import { timestampMs, type Timestamp } from './timestamp.js'
import type { GenesisIdentity, MemberRole, Outcome, Thunk } from './types.js'

/**
 * Who a caller is, as every replica agrees (issue 27, docs/design/permissions.md):
 * its peer id, proven by its call's signature (caller.ts), and the claims of
 * the invite it was admitted with (role, name), which travels with each of
 * its calls and is covered by the call's signature. Every replica checks the
 * invite against the group's genesis (its issuer a genesis voter, for this
 * group and genesis, for this caller or any, not expired at the call's
 * timestamp, not revoked before it) and the issuer's signature, so neither a
 * coordinator nor another member can lend a caller a role it was not given.
 */

/** The roles in order, each including the ones before it (MemberRole). */
export const MEMBER_ROLES: readonly MemberRole[] = ['reader', 'writer', 'voter', 'admin']

/** Whether `role` includes `need`. */
export function roleAllows (role: MemberRole | undefined, need: MemberRole): boolean {
  return role !== undefined && MEMBER_ROLES.indexOf(role) >= MEMBER_ROLES.indexOf(need)
}

/** What an invite says, as its issuer signed it. */
export interface InviteClaims {
  readonly groupId: string
  /** Digest of the genesis the issuer vouches for. */
  readonly genesis: string
  readonly issuer: string
  /** Only this peer may use it (absent: a bearer invite). */
  readonly peer?: string
  readonly expiresAt: number
  readonly role: MemberRole
  readonly name?: string
}

/** An invite as a host decodes it from its text form: its claims, its digest (its name in revocations), and what to check its issuer's signature over. */
export interface ReadInvite {
  readonly claims: InviteClaims
  readonly digest: string
  readonly statement: Uint8Array
  readonly sig: Uint8Array
}

/**
 * Decodes an invite's text form, or undefined if it does not decode. Must be
 * a pure function of the text (every replica must read the same claims):
 * net-libp2p's `inviteReader`. It does not check the signature; the applier
 * does, as it checks calls.
 */
export type InviteReader = (text: string) => ReadInvite | undefined | Promise<ReadInvite | undefined>

/** How far past its expiry an invite is still taken (clock skew between the issuer and the call's coordinator). */
export const INVITE_EXPIRY_SKEW_MS = 60_000

/** A call's caller signature holds (`sig`); its invite, if it brought one, read and signed by its issuer (`invite`), or not (null). */
export interface CallerVerdict {
  readonly sig: boolean
  readonly invite?: ReadInvite | null
}

const refuse = (error: string, reason: string): { refused: Outcome } => ({ refused: { status: 'aborted', error, reason } })

/**
 * The caller `thunk` runs as, or why it is refused, from its verdict and the
 * group's rules: the same on every replica. `genesis` absent (a group not
 * made from a signed genesis): the id alone. `revoked`: peer ids and invite
 * digests → the timestamp from which they are refused.
 */
export function callerOf (thunk: Thunk, verdict: CallerVerdict | undefined, genesis: GenesisIdentity | undefined, groupId: string, revoked: ReadonlyMap<string, Timestamp>): { caller: Caller } | { refused: Outcome } {
  const c = thunk.caller
  if (c === undefined) return refuse('PermissionDeniedError', `${thunk.clientTxnId} carries no caller signature, and this group runs only signed calls`)
  if (verdict?.sig !== true) return refuse('ForgedCallError', `${thunk.clientTxnId}'s caller signature does not hold for ${c.id}: the call was not made by that member`)
  const revokedAt = (key: string): Timestamp | undefined => { const from = revoked.get(key); return from !== undefined && thunk.ts > from ? from : undefined }
  const peerRevoked = revokedAt(`peer:${c.id}`)
  if (peerRevoked !== undefined) return refuse('PermissionDeniedError', `${c.id} was revoked from this group at ${peerRevoked}, before ${thunk.clientTxnId} (${thunk.ts})`)
  if (genesis === undefined) return { caller: { id: c.id } }
  const own: MemberRole | undefined = c.id === genesis.creator ? 'admin' : genesis.voters.includes(c.id) ? 'voter' : undefined
  if (c.invite === undefined) {
    if (own === undefined) return refuse('PermissionDeniedError', `${c.id} brought no invite with ${thunk.clientTxnId}, and only the group's creator and genesis voters are members without one`)
    return { caller: { id: c.id, role: own } }
  }
  const inv = verdict.invite
  if (inv === undefined || inv === null) return refuse('PermissionDeniedError', `${c.id}'s invite does not hold (it does not decode, or its issuer did not sign it)`)
  const claims = inv.claims
  const why = claims.groupId !== groupId || claims.genesis !== genesis.digest
    ? 'it is for another group or genesis'
    : !genesis.voters.includes(claims.issuer)
        ? 'its issuer is not a genesis voter'
        : claims.peer !== undefined && claims.peer !== c.id
          ? 'it was issued to another peer'
          : timestampMs(thunk.ts) > claims.expiresAt + INVITE_EXPIRY_SKEW_MS ? `it expired before ${thunk.ts}` : undefined
  if (why !== undefined) return refuse('PermissionDeniedError', `${c.id}'s invite does not admit it: ${why}`)
  const inviteRevoked = revokedAt(`invite:${inv.digest}`) ?? revokedAt(`peer:${claims.issuer}`)
  if (inviteRevoked !== undefined) return refuse('PermissionDeniedError', `${c.id}'s invite (or its issuer) was revoked from this group at ${inviteRevoked}, before ${thunk.clientTxnId} (${thunk.ts})`)
  const role = own !== undefined && MEMBER_ROLES.indexOf(own) > MEMBER_ROLES.indexOf(claims.role) ? own : claims.role
  if (!roleAllows(role, 'writer')) return refuse('PermissionDeniedError', `${c.id} is a ${role} in this group: it may read but not call procedures`)
  return { caller: { id: c.id, role, ...(claims.name === undefined ? {} : { name: claims.name }) } }
}
