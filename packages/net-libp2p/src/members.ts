import { INVITE_EXPIRY_SKEW_MS, type Revoked } from '@tideline/core'
import { MEMBER_ROLES, type Genesis, type MemberRole } from './membership.js'

/**
 * Who this peer knows as a member of its group, and in which role: the
 * genesis voters and the voters of its current epoch (voters), the group's
 * creator (admin), peers that presented an invite to it (the invite's role;
 * the best one if several), and an operator's allow list (writers). A peer
 * presents its invite again on every connection, so what a restart forgets
 * comes back. A revoked peer is no member, whatever else it is, and an
 * invite the group revoked grants nothing (the group's configuration says
 * which: `revoked`).
 */
export class Members {
  /** peer → the invites it presented (their digests), the role each grants and until when. */
  private readonly joined = new Map<string, Map<string, { readonly role: MemberRole, readonly expiresAt: number }>>()
  private readonly genesis: Genesis
  private readonly currentVoters: () => readonly string[]
  private readonly allowed: (peerId: string) => boolean
  private readonly revoked: () => readonly Revoked[]

  constructor (genesis: Genesis, currentVoters: () => readonly string[], allowed: (peerId: string) => boolean, revoked: () => readonly Revoked[] = () => []) {
    this.genesis = genesis
    this.currentVoters = currentVoters
    this.allowed = allowed
    this.revoked = revoked
  }

  /** The role `peerId` holds as far as this peer knows (undefined: not a member it knows, or revoked). */
  roleOf (peerId: string): MemberRole | undefined {
    if (this.isRevoked(peerId)) return undefined
    const revoked = this.revoked()
    let role: MemberRole | undefined
    const raise = (r: MemberRole): void => { if (role === undefined || MEMBER_ROLES.indexOf(r) > MEMBER_ROLES.indexOf(role)) role = r }
    const now = Date.now()
    for (const [digest, r] of this.joined.get(peerId) ?? []) if (now <= r.expiresAt + INVITE_EXPIRY_SKEW_MS && !this.inviteRevoked(digest, revoked)) raise(r.role)
    if (peerId === this.genesis.creator) raise('admin')
    if (this.genesis.voters.includes(peerId) || this.currentVoters().includes(peerId)) raise('voter')
    if (this.allowed(peerId)) raise('writer')
    return role
  }

  isMember (peerId: string): boolean {
    return this.roleOf(peerId) !== undefined
  }

  /** Whether the group revoked `peerId` itself. */
  isRevoked (peerId: string): boolean {
    return peerId !== this.genesis.creator && this.revoked().some(r => r.kind === 'peer' && r.id === peerId)
  }

  /** Whether the group revoked the invite whose digest is `digest`. */
  inviteRevoked (digest: string, revoked: readonly Revoked[] = this.revoked()): boolean {
    return revoked.some(r => r.kind === 'invite' && r.id === digest)
  }

  /** A member no more because of a revocation: revoked itself, or admitted only by invites since revoked. */
  cutOff (peerId: string): boolean {
    return this.isRevoked(peerId) || (this.joined.has(peerId) && !this.isMember(peerId))
  }

  /** `peerId` presented a valid invite (digest `digest`) granting `role` until `expiresAt` (ms since the epoch). */
  admit (peerId: string, role: MemberRole, digest: string, expiresAt: number): void {
    let invites = this.joined.get(peerId)
    if (invites === undefined) { invites = new Map(); this.joined.set(peerId, invites) }
    invites.set(digest, { role, expiresAt })
  }
}
