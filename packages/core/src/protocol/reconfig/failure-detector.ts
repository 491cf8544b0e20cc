import { STALL_MS } from '../../constants.js'
import { count } from '../emit.js'
import { isSealed, type EpochRecord, type PeerState } from '../state.js'
import { leftOut } from './revoked.js'
import { noteGap, silenceBound } from './silence.js'

/**
 * Which voters this voter believes alive, and the voter set it would like the
 * next epoch to have.
 */

/** When this peer last heard from voter `v` in `record`'s epoch (its start, if not since). */
export function heardAt (record: EpochRecord, v: string): number {
  return Math.max(record.lastHeard.get(v) ?? record.startedAt, record.startedAt)
}

/** When `v`'s watermark entry last moved in `record`'s epoch (its start, if not since). */
export function movedAt (record: EpochRecord, v: string): number {
  return Math.max(record.wmMovedAt.get(v) ?? record.startedAt, record.startedAt)
}

/** A message from voter `v` of the current epoch: it is alive, and one more gap to learn its pace from. */
export function heardFrom (s: PeerState, v: string): void {
  const last = s.current.lastHeard.get(v)
  // Not a gap of a quiet voter's: its silence was excused (quiesce.ts), and would teach the detector patience.
  if (last !== undefined && !s.current.quiet.has(v)) noteGap(s.detector, v, s.now - last)
  s.current.lastHeard.set(v, s.now)
}

/**
 * How long voter `v` may stay silent before this peer suspects it (silence.ts),
 * never less than the idle heartbeat: a busy voter that goes idle is next
 * heard at its heartbeat, and suspecting it sooner voted out healthy voters
 * over and over (one epoch change makes every voter busy a while, and they go
 * idle at different moments).
 */
export function silenceAllowed (s: PeerState, v: string): number {
  return silenceBound(s.detector, v, Math.max(s.options.suspectMinMs, s.options.idleHeartbeatMs), s.options.suspectMs)
}

/**
 * At the start of every step: if this peer runs much later than it asked to
 * be woken, it was stalled (a long GC, a starved CPU, SIGSTOP), and messages
 * may be waiting unread. The stall is not the voters' silence: every voter
 * is credited with it, so that a peer coming back from a stall does not
 * suspect the others before it has read what they sent.
 */
export function discountStall (s: PeerState): void {
  const late = s.now - s.detector.dueAt
  s.detector.dueAt = Infinity
  if (!(late > STALL_MS)) return
  count(s, 'own-stall')
  const record = s.current
  for (const v of record.voters) {
    if (v === s.id) continue
    record.lastHeard.set(v, Math.min(s.now, heardAt(record, v) + late))
    record.wmMovedAt.set(v, Math.min(s.now, movedAt(record, v) + late))
    const owes = record.quiet.get(v)
    if (owes !== undefined && owes !== Infinity) record.quiet.set(v, Math.min(s.now, owes + late))
  }
  // Nor is it its parent's or its children's silence in the dissemination tree (tree.ts).
  const tree = s.tree
  if (tree.parent !== undefined) tree.parent.heard = Math.min(s.now, tree.parent.heard + late)
  for (const c of tree.children.values()) c.seen = Math.min(s.now, c.seen + late)
}

/**
 * A voter silent for longer than its adaptive bound (silence.ts), or whose
 * watermark entry has not moved for suspectMs (within this epoch).
 */
export function suspects (s: PeerState, v: string, now: number): boolean {
  if (v === s.id) return false
  // A quiet voter is suspected only once it owes an answer to this peer's entry for too long (quiesce.ts).
  const owes = s.current.quiet.get(v)
  if (owes !== undefined) return now - owes > silenceAllowed(s, v)
  if (now - heardAt(s.current, v) > silenceAllowed(s, v)) return true
  // Entries freeze while the epoch is being cut, so a stuck entry only counts outside that.
  if (isSealed(s)) return false
  return now - movedAt(s.current, v) > s.options.suspectMs
}

/** The voters this voter would like the next epoch to have: suspects out, leavers out, admissible candidates in. */
export function wantedVoters (s: PeerState, now: number, alive: ReadonlySet<string> = new Set()): string[] {
  // A revoked voter (or one about to be) is left out, alive or not.
  let want = s.current.voters.filter(v => (alive.has(v) || !suspects(s, v, now)) && !leftOut(s, v))
  if (s.leaving) want = want.filter(v => v !== s.id)
  // Voters handing over are left out too, alive or not, unless no one else would be left (two hidden at once: one stays).
  const staying = want.filter(v => !leavingNow(s, v, now))
  if (staying.length > 0) want = staying
  // A voter that is leaving takes candidates in too: it only leaves itself out. (A voter left alone while leaving, a tab
  // hidden with the others gone, hands over to the first one that asks.)
  for (const [c, info] of [...s.candidates].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    if (want.length >= s.options.maxVoters) break
    if (info.epoch === s.current.epoch && !want.includes(c) && !leftOut(s, c) && s.options.admitVoter(c)) want.push(c)
  }
  return want
}

/**
 * Whether voter `v` is handing over: its latest entry said `leaving`, within the failure detector's bound (a
 * leaver that went silent after saying so is a suspect by then anyway).
 */
export function leavingNow (s: PeerState, v: string, now: number): boolean {
  const at = s.current.leavers.get(v)
  return at !== undefined && now - at <= s.options.suspectMs
}

/** Rank among the voters this one believes alive and staying: the first proposes at once, the others wait their turn. */
export function backoff (s: PeerState, now: number): number {
  const live = s.current.voters.filter(v => !suspects(s, v, now) && (v === s.id || !leavingNow(s, v, now)))
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
