import { runRules } from '../apply.js'
import * as C from '../constants.js'
import type { Message } from '../messages.js'
import type { GcResult } from '../store.js'
import { TS_ZERO, makeTimestamp, minTimestamp, timestampMs, type Timestamp } from '../timestamp.js'
import { count, emit, send } from './emit.js'
import { META } from './meta.js'
import { roleOf, type PeerState } from './state.js'
import { isPlaced } from './partitions.js'
import { servedBy } from './tree.js'

/**
 * Bounded history (DESIGN §11, issue 20): a replica knows how far its own
 * evaluation is settled *and* on disk (its durable frontier); voters report
 * theirs to everyone; every replica collects what lies below the least
 * durable frontier of the current voters, less a retention window, and its
 * own. Nothing below that point is needed again by a voter (each replays
 * from its own durable cursor after a crash) and a replica further behind
 * catches up by snapshot (snapshot.ts), so GC never waits for observers.
 */

/**
 * A strict write issued when the frontier stood at `frontier` has landed:
 * every settlement below it was written before (one store queue), so it is
 * durable now. The frontier may lie above the last settlement (the
 * watermark passed with no thunk to evaluate): nothing lies in between, so a
 * restart from the stored cursor needs no batch below it either.
 */
export function noteDurable (s: PeerState, frontier: Timestamp | undefined): void {
  if (frontier !== undefined && frontier > s.history.durable) s.history.durable = frontier
}

/**
 * Whether the durable frontier lags so that a write of its own is due. Under
 * load the group commits carry it forward; idle, one strict write every
 * quarter of the retention window keeps the GC horizon within that much of
 * the frontier, for one small write.
 */
function syncWanted (s: PeerState): boolean {
  const h = s.history
  return !h.syncing && !s.writing && s.phase === 'running' && s.frontier > h.durable
}

function syncEveryMs (s: PeerState): number {
  return Math.max(C.DURABLE_SYNC_MS, s.options.retainMs / 4)
}

/** Timeout: a frontier no strict write has covered gets one of its own, at most every syncEveryMs. */
export function syncSettled (s: PeerState): void {
  const h = s.history
  if (!syncWanted(s) || s.now - h.lastSyncAt < syncEveryMs(s)) return
  h.syncing = true
  h.lastSyncAt = s.now
  emit(s, { t: 'persist', batch: { meta: [[META.durable, s.frontier]], durability: 'strict' }, done: { t: 'synced', frontier: s.frontier } })
}

export function onSynced (s: PeerState, frontier: Timestamp): void {
  s.history.syncing = false
  noteDurable(s, frontier)
}

/**
 * Timeout: a voter tells the voters and its observers its durable frontier
 * and GC point when they moved (at most once a checkpoint interval), and
 * again every REPORT_REFRESH_MS unchanged (a voter that rejoined with an
 * empty table learns where the others stand in an idle group too).
 */
export function reportDurable (s: PeerState): void {
  const h = s.history
  if ((roleOf(s) !== 'voter' && !isPlaced(s)) || s.now - h.lastReportAt < C.DEFAULT_CHECKPOINT_INTERVAL_MS) return
  const report = h.durable + h.collected
  // An unchanged report is repeated, but not by a quiet voter (quiesce.ts): it waits for the group to wake.
  if (report === h.lastReport && (s.detector.quiet || s.now - h.lastReportAt < C.REPORT_REFRESH_MS)) return
  h.lastReport = report
  h.lastReportAt = s.now
  const m: Message = { t: 'dur', durable: h.durable, gc: h.collected }
  for (const v of reporters(s)) if (v !== s.id) send(s, v, m)
  // Not to observers under another peer in the tree: their `tw` brings the voters' reports.
  const serves = servedBy(s)
  for (const o of s.observers.keys()) if (serves(o)) send(s, o, m)
}

/** A voter tells a newly heard observer where it stands (reports go out only when they change). */
export function tellDurable (s: PeerState, to: string): void {
  if (roleOf(s) === 'voter') send(s, to, { t: 'dur', durable: s.history.durable, gc: s.history.collected })
}

/** A report from a peer: kept only from a voter of the current epoch (any other may claim anything). */
export function onDurableReport (s: PeerState, from: string, durable: Timestamp, gc: Timestamp): void {
  if (!reporters(s).includes(from)) return
  const was = s.history.reported.get(from)
  // Frontiers only move up; a reordered older report changes nothing.
  s.history.reported.set(from, { durable: was !== undefined && was.durable > durable ? was.durable : durable, gc: was !== undefined && was.gc > gc ? was.gc : gc })
}

/**
 * Whose durable frontiers bound collection: the current voters, and in a
 * partitioned group the partitions' placed replicas too (voters now or
 * not): only they can give a replica of their partitions a snapshot, so
 * history they still need is kept.
 */
function reporters (s: PeerState): readonly string[] {
  const placed = s.parts?.placement.voters
  return placed === undefined ? s.current.voters : [...new Set([...s.current.voters, ...placed])]
}

/** The least durable frontier over the current voters (this peer's own where it is one), or undefined while one has not reported. */
export function groupDurable (s: PeerState): Timestamp | undefined {
  let least: Timestamp | undefined
  for (const v of reporters(s)) {
    const d = v === s.id ? s.history.durable : s.history.reported.get(v)?.durable
    if (d === undefined) return undefined
    least = least === undefined ? d : minTimestamp(least, d)
  }
  return least
}

/** `ts` less `ms` milliseconds, as the lowest timestamp of that millisecond (TS_ZERO when it would go below it). */
export function lowered (ts: Timestamp, ms: number): Timestamp {
  if (!Number.isFinite(ms)) return TS_ZERO
  const at = timestampMs(ts) - ms
  return at <= 0 ? TS_ZERO : makeTimestamp(at, '0'.repeat(16), 0)
}

/** The point below which this replica may collect: the group's least durable frontier and its own, less the retention window. */
export function gcPoint (s: PeerState): Timestamp | undefined {
  const group = groupDurable(s)
  if (group === undefined) return undefined
  return lowered(minTimestamp(group, s.history.durable), s.options.retainMs)
}

/** A pass under way goes on after a short pause; a new one starts at most every gcIntervalMs. */
const gcWait = (s: PeerState): number => s.history.gcMore ? Math.min(C.GC_STEP_PAUSE_MS, s.options.gcIntervalMs) : s.options.gcIntervalMs

/** Timeout: one GC step when the point moved (at most every gcIntervalMs, one at a time, never while a snapshot is being imported). */
export function collectGarbage (s: PeerState): void {
  const h = s.history
  if (h.gcRunning || s.phase !== 'running' || h.fetch?.importing === true) return
  if (s.now - h.lastGcAt < gcWait(s)) return
  const point = gcPoint(s)
  if (point === undefined || (point <= h.gcAt && !h.gcMore)) return
  h.gcRunning = true
  h.lastGcAt = s.now
  // Exactly-once records go further below: a retry that could still need one is refused as expired
  // on every replica, whichever still holds it (see refusedAt).
  const rules = runRules(s.config)
  const records = lowered(point, rules.txnRetentionMs + rules.txnSkewMs)
  // Bounded steps: a store looks at no more than gcStepLimit entries of each kind per step, so a
  // step never holds the store (and the settlements queued behind it) for long.
  emit(s, { t: 'gc', horizon: point, records: records === TS_ZERO ? undefined : records, limit: s.options.gcStepLimit })
}

export function onGcDone (s: PeerState, horizon: Timestamp, result: GcResult): void {
  const h = s.history
  h.gcRunning = false
  h.gcMore = result.more === true
  if (horizon > h.gcAt) h.gcAt = horizon
  if (result.batchesRemoved > 0 && horizon > h.collected) h.collected = horizon
  count(s, 'gc-steps')
  if (h.gcMore) count(s, 'gc-steps-partial')
  count(s, 'gc-batches-removed', result.batchesRemoved)
  count(s, 'gc-versions-removed', result.versionsRemoved)
  count(s, 'gc-records-removed', result.recordsRemoved)
}

/** When the next of these timeouts is due (for `nextDue`): a sync of settled runs, a report, a GC step. */
export function historyDue (s: PeerState): number {
  const h = s.history
  let due = Infinity
  if (syncWanted(s)) due = Math.min(due, h.lastSyncAt + syncEveryMs(s))
  if (roleOf(s) === 'voter') {
    // An unchanged report is repeated, but not by a quiet voter (reportDurable): it must not be woken for it.
    const changed = h.durable + h.collected !== h.lastReport
    if (changed || !s.detector.quiet) due = Math.min(due, h.lastReportAt + (changed ? C.DEFAULT_CHECKPOINT_INTERVAL_MS : C.REPORT_REFRESH_MS))
  }
  if (!h.gcRunning) {
    const point = gcPoint(s)
    if (point !== undefined && (point > h.gcAt || h.gcMore)) due = Math.min(due, h.lastGcAt + gcWait(s))
  }
  return due
}
