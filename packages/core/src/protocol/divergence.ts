import type { Message } from '../messages.js'
import { count, emit, log, send } from './emit.js'
import { latestCheckpoint } from './schedule.js'
import { roleOf, type PeerState } from './state.js'
import { holdingTag } from './partitions.js'
import { servedBy } from './tree.js'
import type { CheckpointReport } from '../types.js'

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
  const h = holdingTag(s)
  const m: Message = { t: 'ck', count: latest, digest, ...(h === undefined ? {} : { h }) }
  for (const v of s.current.voters) send(s, v, m)
  if (roleOf(s) === 'voter') {
    const serves = servedBy(s)
    for (const o of s.observers.keys()) if (serves(o)) send(s, o, m)
  }
}

/** How many counts of voters' reported digests a replica keeps to find a majority in. */
const VOTER_CHECKPOINTS_KEPT = 16

export function compareCheckpoint (s: PeerState, from: string, at: number, theirs: string, h?: string): void {
  // In a partitioned group, replicas holding other partitions evaluate other thunks: their digests are not comparable.
  if (h !== holdingTag(s)) return
  if (s.current.voters.includes(from)) noteVoterCheckpoint(s, from, at, theirs)
  const mine = s.checkpoints.get(at)
  if (mine === undefined || mine === theirs) return
  count(s, 'digest-mismatch')
  healIfOutvoted(s, at, mine)
  if (s.divergence !== undefined) return
  s.divergence = { peer: from, count: at, mine, theirs }
  log(s, 'diverged', { ...s.divergence })
  emit(s, { t: 'event', event: { t: 'diverged', divergence: s.divergence } })
}

function noteVoterCheckpoint (s: PeerState, from: string, at: number, digest: string): void {
  const kept = s.history.voterCheckpoints
  let byVoter = kept.get(at)
  if (byVoter === undefined) {
    byVoter = new Map()
    kept.set(at, byVoter)
    if (kept.size > VOTER_CHECKPOINTS_KEPT) kept.delete(Math.min(...kept.keys()))
  }
  byVoter.set(from, digest)
  const mine = s.checkpoints.get(at)
  if (mine !== undefined && mine !== digest) healIfOutvoted(s, at, mine)
}

/**
 * Divergence heals: when a majority of the current voters reported one
 * digest at a count where this replica has another, this replica's history
 * is the odd one (a corrupted store, a planted value, a bug). It stops
 * serving reads and takes a snapshot from one of those voters (snapshot.ts).
 */
function healIfOutvoted (s: PeerState, at: number, mine: string): void {
  if (s.history.heal !== undefined) return
  const byVoter = s.history.voterCheckpoints.get(at)
  if (byVoter === undefined) return
  const tally = new Map<string, string[]>()
  for (const [voter, digest] of byVoter) {
    if (voter === s.id || digest === mine || !s.current.voters.includes(voter)) continue
    tally.set(digest, [...(tally.get(digest) ?? []), voter])
  }
  for (const voters of tally.values()) {
    if (voters.length < s.current.majority) continue
    s.history.heal = { voters, count: at }
    count(s, 'heal-started')
    log(s, 'healing', { count: at, mine, voters })
    return
  }
}

/** The voters' latest digest checkpoints this voter knows (its own, and the newest count others reported), for its children in the tree (tree.ts). */
export function checkpointsDown (s: PeerState): CheckpointReport[] {
  const out: CheckpointReport[] = []
  const latest = latestCheckpoint(s)
  const own = s.checkpoints.get(latest)
  if (own !== undefined && latest > 0) out.push({ voter: s.id, count: latest, digest: own })
  const counts = [...s.history.voterCheckpoints.keys()]
  if (counts.length === 0) return out
  const newest = Math.max(...counts)
  for (const [voter, digest] of s.history.voterCheckpoints.get(newest) ?? []) if (voter !== s.id && s.current.voters.includes(voter)) out.push({ voter, count: newest, digest })
  return out
}
