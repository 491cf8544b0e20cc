import { MEMBER_ROLES, type Genesis, type MemberRole } from './membership.js'

/**
 * Who this peer knows as a member of its group, and in which role: the
 * genesis voters and the voters of its current epoch (voters), the group's
 * creator (admin), peers that presented an invite to it (the invite's role;
 * the best one if several), and an operator's allow list (writers). A peer
 * presents its invite again on every connection, so what a restart forgets
 * comes back.
 */
export class Members {
  private readonly joined = new Map<string, MemberRole>()
  private readonly genesis: Genesis
  private readonly currentVoters: () => readonly string[]
  private readonly allowed: (peerId: string) => boolean

  constructor (genesis: Genesis, currentVoters: () => readonly string[], allowed: (peerId: string) => boolean) {
    this.genesis = genesis
    this.currentVoters = currentVoters
    this.allowed = allowed
  }

  /** The role `peerId` holds as far as this peer knows (undefined: not a member it knows). */
  roleOf (peerId: string): MemberRole | undefined {
    let role: MemberRole | undefined = this.joined.get(peerId)
    const raise = (r: MemberRole): void => { if (role === undefined || MEMBER_ROLES.indexOf(r) > MEMBER_ROLES.indexOf(role)) role = r }
    if (peerId === this.genesis.creator) raise('admin')
    if (this.genesis.voters.includes(peerId) || this.currentVoters().includes(peerId)) raise('voter')
    if (this.allowed(peerId)) raise('writer')
    return role
  }

  isMember (peerId: string): boolean {
    return this.roleOf(peerId) !== undefined
  }

  /** `peerId` presented a valid invite granting `role`. */
  admit (peerId: string, role: MemberRole): void {
    const had = this.joined.get(peerId)
    if (had === undefined || MEMBER_ROLES.indexOf(role) > MEMBER_ROLES.indexOf(had)) this.joined.set(peerId, role)
  }
}
