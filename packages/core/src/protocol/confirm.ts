import { send } from './emit.js'
import { isInstalling, isSealed, roleOf, type ConfirmRound, type PeerState } from './state.js'

/**
 * Read confirmation. A voter voted out of a later epoch it has not heard of
 * yet would mint read timestamps below transactions that already completed
 * there, so a strict read's timestamp counts only once a majority of this
 * epoch's voters said, after it was minted, that the epoch is still current
 * and unsealed (a ReadIndex-style check; one round serves every read that
 * waits for it). If the epoch changes meanwhile, the read mints again.
 */

/**
 * Queues read `id` (its timestamp just minted) for the next confirmation
 * round. Returns the reads confirmed at once: with a single voter, its own
 * answer is the majority.
 */
export function confirmRead (s: PeerState, id: number): number[] {
  s.confirmQueue.push(id)
  return startConfirm(s)
}

function startConfirm (s: PeerState): number[] {
  if (s.confirming !== undefined || s.confirmQueue.length === 0) return []
  const reads = s.confirmQueue
  s.confirmQueue = []
  const round: ConfirmRound = { round: ++s.confirmRound, epoch: s.current.epoch, oks: new Set<string>(), reads, sentAt: s.now }
  s.confirming = round
  if (!isSealed(s) && !isInstalling(s)) round.oks.add(s.id)
  sendConfirm(s, round)
  return checkConfirm(s)
}

function sendConfirm (s: PeerState, round: ConfirmRound): void {
  round.sentAt = s.now
  for (const v of s.current.voters) if (!round.oks.has(v)) send(s, v, { t: 'confirm', epoch: round.epoch, round: round.round })
}

/** A voter answers a confirmation only while the epoch is current here and no ballot sealed it. */
export function onConfirm (s: PeerState, from: string, epoch: number, round: number): void {
  if (roleOf(s) === 'voter' && epoch === s.current.epoch && !isSealed(s) && !isInstalling(s) && s.current.voters.includes(from)) {
    send(s, from, { t: 'confirmed', epoch, round })
  }
}

/** Returns the reads a completed round confirmed (empty while the round waits). */
export function onConfirmed (s: PeerState, from: string, epoch: number, round: number): number[] {
  const c = s.confirming
  if (c === undefined || c.round !== round || c.epoch !== epoch || epoch !== s.current.epoch || !s.current.voters.includes(from)) return []
  c.oks.add(from)
  return checkConfirm(s)
}

/** The reads of the round under way if a majority confirmed it, and of any round that then completes at once. */
function checkConfirm (s: PeerState): number[] {
  const c = s.confirming
  if (c === undefined || c.oks.size < s.current.majority) return []
  s.confirming = undefined
  return [...c.reads, ...startConfirm(s)]
}

/** An epoch change fails every confirmation under way: returns those reads, to mint again in the new epoch. */
export function failConfirmations (s: PeerState): number[] {
  const reads = [...(s.confirming?.reads ?? []), ...s.confirmQueue]
  s.confirming = undefined
  s.confirmQueue = []
  return reads
}

/** Resends an unanswered confirmation round (from the tick). */
export function retryConfirm (s: PeerState): void {
  if (s.confirming !== undefined && s.now - s.confirming.sentAt >= s.options.writeRetryMs) sendConfirm(s, s.confirming)
}
