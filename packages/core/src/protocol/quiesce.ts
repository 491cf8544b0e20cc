import * as C from '../constants.js'
import type { Message } from '../messages.js'
import { count, send } from './emit.js'
import { publish, watermarkEntries } from './promise.js'
import { isBusy } from './schedule.js'
import { roleOf, type PeerState } from './state.js'

/**
 * Quiescence, as CockroachDB quiesces idle ranges. A voter with nothing to
 * do for `quiesceAfterMs`, and no observer or candidate to serve, stops its
 * idle heartbeat; its last entry says so (`quiet`). The voters then excuse
 * its silence: instead of its heartbeat they expect an answer to their own
 * entry, and a quiet voter answers each plain entry with its own (still
 * quiet). One that does not answer within its silence bound is suspected as
 * any silent voter is. Work wakes a quiet voter (a call, a read, a batch, an
 * epoch change, an observer's hello): it publishes at once and heartbeats
 * again. A quiet voter repeats its quiet entry every 10 `suspectMs`, so a
 * voter that was cut off while the others changed epoch (and is quiet too)
 * hears of it: an entry of an older or newer epoch gets the decision back. A group whose voters are all quiet sends nothing at all, which is
 * what lets one relay process host many groups (DESIGN §13).
 *
 * Safety does not depend on any of this: a quiet voter's entry stays where
 * it was, so the watermark does not move past it until the voter speaks.
 */

/** How often a quiet voter repeats its quiet entry. */
export function quietRefreshMs (s: PeerState): number {
  return C.QUIET_REFRESH_SUSPECTS * s.options.suspectMs
}

/** Whether this voter may be quiet now. */
function mayQuiesce (s: PeerState): boolean {
  const after = s.options.quiesceAfterMs
  return after > 0 && s.phase === 'running' && s.now - s.lastBusyAt >= after && !isBusy(s, false) &&
    s.observers.size === 0 && s.candidates.size === 0 && s.current.voters.length > 1 && !s.promiseBlocked
}

/** The heartbeat timeout: the watermark gossiped (every few ms busy, at the heartbeat idle), or nothing while quiet. */
export function heartbeat (s: PeerState): void {
  const d = s.detector
  if (d.quiet) {
    if (mayQuiesce(s)) {
      // Now and then, its quiet entry again: a voter that missed an epoch change hears of it from the answer.
      if (s.now - s.lastGossip >= quietRefreshMs(s)) repeatQuiet(s)
      return
    }
    d.quiet = false
    count(s, 'woke')
    publish(s)
    return
  }
  const busy = isBusy(s)
  if (mayQuiesce(s)) {
    d.quiet = true
    count(s, 'quiesced')
    publish(s)
    return
  }
  if (s.now - s.lastGossip >= (busy ? s.options.gossipIntervalMs : s.options.idleHeartbeatMs)) publish(s)
}

/**
 * A quiet voter's entry again, as it last published it: a fresh one would
 * move the watermark, and with it the durable frontier, its reports and the
 * next GC step, all for nothing.
 */
function repeatQuiet (s: PeerState): void {
  const last = s.current.coordinator.lastEntry
  if (last === undefined) {
    publish(s)
    return
  }
  s.lastGossip = s.now
  const msg: Message = { t: 'wm', wm: [last], quiet: true }
  for (const v of s.current.voters) if (v !== s.id) send(s, v, msg)
}

/**
 * What a message from voter `v` of the current epoch says of its quiet:
 * a quiet entry excuses its silence (and answers), a plain entry ends the
 * excuse, anything else answers.
 */
export function noteQuiet (s: PeerState, v: string, m: Message): void {
  // Its entry says whether it is handing over (every entry of a leaving voter comes straight from it, and says so).
  if (m.t === 'wm') {
    if (m.leaving === true) s.current.leavers.set(v, s.now)
    else s.current.leavers.delete(v)
  }
  const quiet = s.current.quiet
  if (m.t === 'wm' && m.quiet === true) {
    quiet.set(v, Infinity)
  } else if (m.t === 'wm') {
    // Its entry has been still while it was quiet: the stuck-entry clock starts now.
    if (quiet.delete(v)) s.current.wmMovedAt.set(v, s.now)
    // A voter awake: a quiet one answers with its entry (that voter may be waiting for it to pass something).
    if (s.detector.quiet && roleOf(s) === 'voter') send(s, v, { t: 'wm', wm: watermarkEntries(s), quiet: true })
  } else if (quiet.has(v)) {
    quiet.set(v, Infinity)
  }
}
