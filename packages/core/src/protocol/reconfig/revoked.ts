import type { Timestamp } from '../../timestamp.js'
import type { GroupConfig, Revocation, Revoked } from '../../types.js'
import type { PeerState } from '../state.js'

/** What the group revoked, and what this voter is about to (revoke.ts): who is left out. */

export const keyOf = (r: Revocation): string => `${r.kind}:${r.id}`

/** Whether `config` revokes peer `id` (from any time). */
export function revokedPeer (config: GroupConfig, id: string): boolean {
  return config.revoked?.some(r => r.kind === 'peer' && r.id === id) === true
}

/** Revoked or about to be (a pending revocation here): never voted in, or kept as a voter. */
export function leftOut (s: PeerState, id: string): boolean {
  return revokedPeer(s.config, id) || s.revocations.targets.has(keyOf({ kind: 'peer', id }))
}

/** The revocations of the next epoch change: the current ones, and this voter's pending ones from `floor` on. */
export function nextRevoked (s: PeerState, floor: Timestamp): readonly Revoked[] {
  const out = [...(s.config.revoked ?? [])]
  const have = new Set(out.map(keyOf))
  for (const [key, target] of s.revocations.targets) if (!have.has(key)) out.push({ ...target, from: floor })
  return out
}
