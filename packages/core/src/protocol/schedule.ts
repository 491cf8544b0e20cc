import * as C from '../constants.js'
import { isSealed, roleOf, type PeerState } from './state.js'
import { historyDue } from './horizon.js'
import { snapshotDue } from './snapshot.js'
import { scrubDue } from './damage.js'
import { heardAt, movedAt, silenceAllowed } from './reconfig/failure-detector.js'
import { partitionsBusy } from './partitions.js'

/**
 * When a peer next needs its timeouts run (DESIGN §12: no fixed tick). A
 * busy peer (anything in flight, waiting or being agreed, or work within the
 * last BUSY_WINDOW_MS) runs them every BUSY_TICK_MS, and a busy voter when its
 * next entry is due (every gossipIntervalMs); an idle one
 * sleeps until its heartbeat, an observer's hello, a digest checkpoint worth
 * sending, a call deadline, a clock-lease renewal or the moment the failure
 * detector would suspect a silent voter, whichever comes first.
 */

/** Marks work: the peer stays busy for BUSY_WINDOW_MS after it. */
export function noteWork (s: PeerState): void {
  s.lastBusyAt = s.now
}

/**
 * Whether anything is under way that the timeouts drive (retransmission, gap
 * fill, evaluation, reads, calls, reconfiguration). `housekeeping`: whether a
 * GC step or a sync of settled runs counts (it does for when to tick; it does
 * not wake a quiet voter, quiesce.ts: that would move the watermark, and the
 * next GC step with it, for good).
 */
export function isBusy (s: PeerState, housekeeping = true): boolean {
  if (s.now - s.lastBusyAt < C.BUSY_WINDOW_MS) return true
  const coordinator = s.current.coordinator
  if (coordinator.inflight.size > 0 || coordinator.open.length > 0 || coordinator.outbox.length > 0) return true
  if (s.persistQueue.length > 0 || s.signing.size > 0 || s.writing || s.evaluation === 'running' || s.flushScheduled) return true
  if (s.waiters.size > 0 || s.forwards.size > 0 || s.reads.size > 0 || s.confirming !== undefined || s.confirmQueue.length > 0) return true
  if (s.leaves.size > 0 || s.deferred.size > 0 || s.revocations.targets.size > 0 || s.revocations.forwarded.size > 0 || s.leaving || s.forcePropose) return true
  if (s.phase !== 'running' || isSealed(s) || s.acceptorWrites.writing || s.leaseWriting) return true
  if (s.current.proposal !== undefined || s.current.changeWantedSince !== undefined) return true
  if (s.history.fetch !== undefined || s.history.exportWanted !== undefined || (housekeeping && (s.history.gcRunning || s.history.syncing))) return true
  // An older epoch still being finished, or batches held, being stored or known missing.
  if (s.epochs.size > 1 || partitionsBusy(s)) return true
  for (const [c, stream] of s.current.streams) {
    if (stream.held.size > 0 || stream.receiving.size > 0) return true
    if (stream.have < (s.current.wm.get(c)?.count ?? 0)) return true
  }
  return false
}

/** The earliest time (host clock) at which `tick` has something to do. */
export function nextDue (s: PeerState): number {
  const due = wakeAt(s)
  // Remembered: a step much later than this means the peer stalled (failure-detector.ts).
  s.detector.dueAt = Math.min(s.detector.dueAt, due)
  return due
}

function wakeAt (s: PeerState): number {
  if (s.phase === 'closed') return Infinity
  if (isBusy(s)) {
    // Work is driven by messages and the end of each turn; the timeouts only retry, and a voter's entry goes out on time.
    const gossip = roleOf(s) === 'voter' && !s.detector.quiet ? s.lastGossip + s.options.gossipIntervalMs : Infinity
    return Math.max(s.now + C.MIN_TICK_MS, Math.min(s.now + C.BUSY_TICK_MS, gossip))
  }
  // A quiet voter that now has an observer or a candidate to serve wakes at once (a hello is not work: nothing else would tick it).
  if (s.detector.quiet && (s.observers.size > 0 || s.candidates.size > 0)) return s.now + C.MIN_TICK_MS
  // Never sooner than a busy peer's tick: a timeout that is due but finds nothing to do cannot spin.
  const soonest = s.now + C.BUSY_TICK_MS
  let due = Math.min(s.nextDeadline, historyDue(s), snapshotDue(s), scrubDue(s))
  if (s.checkpoints.size > 0 && latestCheckpoint(s) !== s.lastCheckpointCount) due = Math.min(due, s.lastCheckpointSent + C.DEFAULT_CHECKPOINT_INTERVAL_MS)
  if (roleOf(s) !== 'voter') return Math.max(soonest, Math.min(due, s.lastHello + C.DEFAULT_HELLO_INTERVAL_MS))
  // The clock lease is renewed on the heartbeat (its promise mints, see promise.ts); a quiet voter repeats its quiet entry far apart (quiesce.ts).
  due = Math.min(due, s.lastGossip + (s.detector.quiet ? C.QUIET_REFRESH_SUSPECTS * s.options.suspectMs : s.options.idleHeartbeatMs))
  // The moment the failure detector would suspect a voter that stays silent (or whose entry stays put), or a quiet one that owes an answer.
  const record = s.current
  for (const v of record.voters) {
    if (v === s.id) continue
    const owes = record.quiet.get(v)
    if (owes !== undefined) due = Math.min(due, owes + silenceAllowed(s, v) + 1)
    else due = Math.min(due, heardAt(record, v) + silenceAllowed(s, v) + 1, movedAt(record, v) + s.options.suspectMs + 1)
  }
  return Math.max(soonest, due)
}

/** The count of the newest digest checkpoint this replica recorded (-1: none). */
export function latestCheckpoint (s: PeerState): number {
  let latest = -1
  for (const c of s.checkpoints.keys()) if (c > latest) latest = c
  return latest
}
