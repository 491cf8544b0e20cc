import { isSealed, type PeerState } from '../state.js'
import { leftOut } from './revoked.js'

/**
 * Which voters this voter believes alive, and the voter set it would like the
 * next epoch to have.
 */

/** A voter silent, or whose watermark entry has not moved, for suspectMs (within this epoch). */
export function suspects (s: PeerState, v: string, now: number): boolean {
  if (v === s.id) return false
  const record = s.current
  const heard = record.lastHeard.get(v) ?? record.startedAt
  if (now - Math.max(heard, record.startedAt) > s.options.suspectMs) return true
  // Entries freeze while the epoch is being cut, so a stuck entry only counts outside that.
  if (isSealed(s)) return false
  const moved = record.wmMovedAt.get(v) ?? record.startedAt
  return now - Math.max(moved, record.startedAt) > s.options.suspectMs
}

/** The voters this voter would like the next epoch to have: suspects out, leavers out, admissible candidates in. */
export function wantedVoters (s: PeerState, now: number, alive: ReadonlySet<string> = new Set()): string[] {
  // A revoked voter (or one about to be) is left out, alive or not.
  let want = s.current.voters.filter(v => (alive.has(v) || !suspects(s, v, now)) && !leftOut(s, v))
  if (s.leaving) want = want.filter(v => v !== s.id)
  if (!s.leaving) {
    for (const [c, info] of [...s.candidates].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
      if (want.length >= s.options.maxVoters) break
      if (info.epoch === s.current.epoch && !want.includes(c) && !leftOut(s, c) && s.options.admitVoter(c)) want.push(c)
    }
  }
  return want
}

/** Rank among the voters this one believes alive: the first proposes at once, the others wait their turn. */
export function backoff (s: PeerState, now: number): number {
  const live = s.current.voters.filter(v => !suspects(s, v, now))
  return s.options.proposeTimeoutMs * (1 + Math.max(0, live.indexOf(s.id)))
}

/**
 * Starts an epoch change now (with the voters this peer would want), rather
 * than when the failure detector calls for one.
 */
export function forceProposal (s: PeerState): void {
  s.forcePropose = true
  s.current.nextProposeAt = -Infinity
  s.current.changeWantedSince = -Infinity
}
