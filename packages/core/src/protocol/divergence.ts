import type { Message } from '../messages.js'
import { count, emit, log, send } from './emit.js'
import { latestCheckpoint } from './schedule.js'
import { roleOf, type PeerState } from './state.js'

/**
 * Divergence detection: replicas tell each other the result digest they
 * reached after every DIGEST_CHECKPOINT_EVERY-th thunk; one that hears a
 * different digest for a count it also reached reports it.
 */

/** Tells the voters (and a voter its observers) the latest digest checkpoint, once each (a replica behind compares when it sends its own). */
export function sendCheckpoint (s: PeerState): void {
  s.lastCheckpointSent = s.now
  const latest = latestCheckpoint(s)
  const digest = s.checkpoints.get(latest)
  if (digest === undefined || latest === s.lastCheckpointCount) return
  s.lastCheckpointCount = latest
  const m: Message = { t: 'ck', count: latest, digest }
  for (const v of s.current.voters) send(s, v, m)
  if (roleOf(s) === 'voter') for (const o of s.observers.keys()) send(s, o, m)
}

export function compareCheckpoint (s: PeerState, from: string, at: number, theirs: string): void {
  const mine = s.checkpoints.get(at)
  if (mine === undefined || mine === theirs) return
  count(s, 'digest-mismatch')
  if (s.divergence !== undefined) return
  s.divergence = { peer: from, count: at, mine, theirs }
  log(s, 'diverged', { ...s.divergence })
  emit(s, { t: 'event', event: { t: 'diverged', divergence: s.divergence } })
}
