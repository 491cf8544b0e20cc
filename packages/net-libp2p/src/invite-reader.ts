import { MEMBER_ROLES, type InviteReader, type MemberRole, type ReadInvite } from '@tideline/core'
import { INVITE_DOMAIN, concat, decodeBody, decodeSigned } from './documents.js'

/** The longest `name` an invite may claim. */
export const MAX_INVITE_NAME = 64

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
    let inv: Record<string, unknown>
    try {
      signed = decodeSigned(text)
      inv = decodeBody(signed.body, 'invite')
    } catch {
      return undefined
    }
    // Absent: a writer (invites made before roles); anything else must name a role (null does not).
    const role = inv.role === undefined ? 'writer' : inv.role
    const ok = inv.v === 1 && typeof inv.groupId === 'string' && typeof inv.genesis === 'string' && typeof inv.issuer === 'string' &&
      (inv.peer === undefined || typeof inv.peer === 'string') &&
      typeof inv.expiresAt === 'number' && Number.isSafeInteger(inv.expiresAt) &&
      MEMBER_ROLES.includes(role as MemberRole) &&
      (inv.name === undefined || (typeof inv.name === 'string' && inv.name.length > 0 && inv.name.length <= MAX_INVITE_NAME))
    if (!ok) return undefined
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(signed.body)))
    const read: ReadInvite = {
      claims: {
        groupId: inv.groupId as string,
        genesis: inv.genesis as string,
        issuer: inv.issuer as string,
        ...(inv.peer === undefined ? {} : { peer: inv.peer as string }),
        expiresAt: inv.expiresAt as number,
        role: role as MemberRole,
        ...(inv.name === undefined ? {} : { name: inv.name as string })
      },
      digest: Array.from(digest, b => b.toString(16).padStart(2, '0')).join(''),
      statement: concat(INVITE_DOMAIN, signed.body),
      sig: signed.sig
    }
    return read
  }
}
