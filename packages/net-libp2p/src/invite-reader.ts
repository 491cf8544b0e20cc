import { MEMBER_ROLES, type InviteClaims, type InviteReader, type MemberRole } from '@tideline/core'
import { INVITE_DOMAIN, concat, decodeBody, decodeSigned, sha256Hex } from './documents.js'

/** The longest `name` an invite may claim. */
export const MAX_INVITE_NAME = 64

/**
 * A decoded invite body's claims, or why it is not a well-formed invite: the
 * one shape check both the join (membership.ts `verifyInvite`) and every
 * replica's applier (`inviteReader`) make, so they take the same invites.
 */
export function inviteClaims (inv: Record<string, unknown>): InviteClaims | string {
  if (inv.v !== 1) return 'unknown version'
  if (typeof inv.groupId !== 'string' || typeof inv.genesis !== 'string') return 'groupId and genesis must be strings'
  if (typeof inv.issuer !== 'string') return 'issuer must be a peer id'
  if (inv.peer !== undefined && typeof inv.peer !== 'string') return 'peer must be a peer id'
  if (typeof inv.expiresAt !== 'number' || !Number.isSafeInteger(inv.expiresAt)) return 'expiresAt must be an integer'
  // Absent: a writer (invites made before roles); anything else must name a role (null does not).
  const role = inv.role === undefined ? 'writer' : inv.role
  if (!MEMBER_ROLES.includes(role as MemberRole)) return `role must be one of ${MEMBER_ROLES.join(', ')}`
  if (inv.name !== undefined && (typeof inv.name !== 'string' || inv.name.length === 0 || inv.name.length > MAX_INVITE_NAME)) return `name must be 1..${MAX_INVITE_NAME} characters`
  return {
    groupId: inv.groupId,
    genesis: inv.genesis,
    issuer: inv.issuer,
    ...(inv.peer === undefined ? {} : { peer: inv.peer }),
    expiresAt: inv.expiresAt,
    role: role as MemberRole,
    ...(inv.name === undefined ? {} : { name: inv.name })
  }
}

/**
 * Reads invites as every replica's applier needs them (core's
 * `InviteReader`): the text form decoded (strict CBOR), its claims, its
 * digest (hex SHA-256 of the signed body: its name in revocations), and the
 * bytes its issuer signed. A pure function of the text; the signature is
 * checked by the applier, as callers' are. Light (no libp2p): a tab's Web
 * Worker imports it as `@tideline/net-libp2p/invite-reader`.
 */
export function inviteReader (): InviteReader {
  return async text => {
    let signed
    let claims
    try {
      signed = decodeSigned(text)
      claims = inviteClaims(decodeBody(signed.body, 'invite'))
    } catch {
      return undefined
    }
    if (typeof claims === 'string') return undefined
    return { claims, digest: await sha256Hex(signed.body), statement: concat(INVITE_DOMAIN, signed.body), sig: signed.sig }
  }
}
