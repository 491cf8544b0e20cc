import { runRules, type AppliedRun } from '../apply.js'
import * as C from '../constants.js'
import { Hasher } from '../hash.js'
import { maxTimestamp, type Timestamp } from '../timestamp.js'
import type { Batch, Cursor, Thunk } from '../types.js'
import { serveReads } from './reads.js'
import { recordStates } from './state-votes.js'
import { resolveWaiters } from './requests.js'
import { count, emit, log } from './emit.js'
import { type EpochRecord, type PeerState, type Stream } from './state.js'
import { passes } from './cut.js'
import { AHEAD, FORWARD, afterRun, holdingList, planOf, takeThunk } from './partitions.js'
import { recordPartStates } from './part-votes.js'
import type { ForwardedReads, RunPlan } from '../run-rules.js'

/**
 * The E-phase: runs of thunks in timestamp order go to the applier (an
 * effect); its results come back as `run-applied`. One run at a time.
 */

/** Starts the next run unless one is under way (or evaluation is held). */
export function kickEvaluator (s: PeerState): void {
  if (s.evaluation !== 'idle' || s.phase === 'closed' || s.phase === 'failed') return
  // A snapshot to import or to export waits for the run under way; no new one starts before it (snapshot.ts).
  if (s.history.fetch?.ready === true || s.history.exportWanted !== undefined) return
  // A replica healing evaluates nothing on its wrong state: it goes on from the snapshot's cursor.
  if (s.history.heal !== undefined) return
  const { run, blocked, next, modes, remote } = collectRun(s, s.options.maxRunThunks)
  if (run.length > 0) {
    s.evaluation = 'running'
    const plan = s.parts === undefined ? undefined : planOf(s, modes, remote)
    emit(s, { t: 'apply', run, base: liveCursor(s), rules: runRules(s.config), ...(plan === undefined ? {} : { plan }) })
    return
  }
  if (s.parts !== undefined) releaseEvaluated(s)
  const V = (s.epochs.get(s.evaluatingEpoch) as EpochRecord).wm.value
  const reach = blocked ? s.frontier : (next !== undefined && next < V ? next : V)
  if (reach > s.frontier) s.frontier = reach
  serveReads(s)
}

/**
 * Where evaluation stands, as a cursor: the base of the next run, and (while
 * no run is under way) exactly what the store holds, since every run before
 * is settled and nothing lies between the last one and the frontier.
 */
export function liveCursor (s: PeerState): Cursor {
  const record = s.epochs.get(s.evaluatingEpoch) as EpochRecord
  const evalNext: Record<string, number> = {}
  const evalIndex: Record<string, number> = {}
  for (const [c, stream] of record.streams) {
    evalNext[c] = stream.evalNext
    if (stream.evalIndex > 0) evalIndex[c] = stream.evalIndex
  }
  const holding = holdingList(s)
  const parts = s.parts === undefined ? undefined : [...s.parts.digests].sort(([a], [b]) => a - b).map(([q, [a, b]]) => [q, a, b] as const)
  return { frontier: s.frontier, last: s.lastEvaluated, count: s.evaluatedCount, digest: s.hasher.state, evalNext, evalIndex, epoch: record.epoch, ...(s.stateDigest === undefined ? {} : { state: s.stateDigest }), ...(holding === undefined ? {} : { holding }), ...(parts === undefined ? {} : { parts }) }
}

interface CollectedRun {
  readonly run: Thunk[]
  /** A thunk that must come next is missing (or the run is full): nothing further can be evaluated yet. */
  readonly blocked: boolean
  /** The lowest held thunk not taken because the watermark has not passed it. */
  readonly next: Timestamp | undefined
  /** A partitioned replica's mode for each thunk of the run, and the reads forwarded to it (partitions.ts). */
  readonly modes: number[]
  readonly remote: Array<readonly ForwardedReads[] | undefined>
}

/**
 * Takes the next run of thunks that can be evaluated: in timestamp order
 * (a merge of the coordinators' sequences of batches of the epoch being
 * evaluated; a run may start or end inside a batch),
 * below that epoch's watermark (or, once its successor is decided, up to
 * its cut), and only while no coordinator may still have an unseen thunk
 * below the candidate. A run never spans two epochs.
 */
function collectRun (s: PeerState, max: number): CollectedRun {
  const run: Thunk[] = []
  const modes: number[] = []
  const remote: Array<readonly ForwardedReads[] | undefined> = []
  const done = (blocked: boolean, next?: Timestamp): CollectedRun => ({ run, blocked, next, modes, remote })
  for (;;) {
    const record = s.epochs.get(s.evaluatingEpoch) as EpochRecord
    const cut = record.floor !== undefined
    const V = record.wm.value
    while (run.length < max) {
      let best: Thunk | undefined
      let bestStream: Stream | undefined
      let blocked = false
      for (const [c, stream] of record.streams) {
        // A projection with nothing at or after the cursor's index (a snapshot's cursor inside the whole batch) is passed too.
        // A seq that held nothing here is passed once its coordinator's entry says it is durable: evaluation never moves past a batch that may be cut.
        const durable = cut ? Infinity : (record.wm.get(c)?.count ?? 0)
        while ((passes(stream, stream.evalNext) && (stream.evalNext <= durable || stream.skip?.has(stream.evalNext) === true)) || spent(stream.held.get(stream.evalNext), stream.evalIndex)) { stream.evalNext++; stream.evalIndex = 0 }
        if (cut && stream.evalNext > (stream.end ?? 0)) continue
        const t = thunkAt(stream.held.get(stream.evalNext), stream.evalIndex)
        if (t !== undefined) {
          if (best === undefined || t.ts < best.ts) { best = t; bestStream = stream }
        } else if (cut || stream.evalNext <= (record.wm.get(c)?.count ?? 0)) {
          blocked = true
        }
      }
      if (blocked) return done(true)
      if (best === undefined) break
      if (!cut && best.ts >= V) return done(false, best.ts)
      if (s.parts !== undefined) {
        // A partitioned replica skips what is not its business, and stops before a thunk whose forwarded reads it lacks.
        const take = takeThunk(s, best)
        if (take.t === 'wait') {
          if (take.ahead) { run.push(best); modes.push(FORWARD | AHEAD); remote.push(undefined) }
          return done(true)
        }
        advance(bestStream as Stream)
        if (take.t === 'skip') continue
        modes.push(take.mode)
        remote.push(take.remote)
      } else {
        advance(bestStream as Stream)
      }
      run.push(best)
    }
    if (run.length >= max) return done(true)
    if (!cut) return done(false)
    // Every kept thunk of this epoch is evaluated (or in this run): the next epoch may start after it.
    if (run.length > 0 || !s.epochs.has(record.epoch + 1)) return done(true)
    s.epochs.delete(record.epoch)
    s.evaluatingEpoch = record.epoch + 1
    // Everything below the floor is evaluated now; the new epoch's thunks all lie above it.
    s.frontier = maxTimestamp(s.frontier, record.floor as Timestamp)
    log(s, 'epoch-evaluated', { epoch: record.epoch, frontier: s.frontier })
  }
}

/**
 * The thunk at or after index `index` of a batch: the one at `index` in a
 * whole batch; in a projection (feeds.ts), whose indices ascend with gaps,
 * the first one the projection kept from there on.
 */
export function thunkAt (batch: Batch | undefined, index: number): Thunk | undefined {
  if (batch === undefined) return undefined
  const t = batch.thunks[index]
  if (batch.projected !== true || t?.index === index) return t
  return batch.thunks.find(x => x.index >= index)
}

/** A projection evaluated through: none of its thunks lies at or after `index`. */
const spent = (batch: Batch | undefined, index: number): boolean => batch?.projected === true && index > 0 && thunkAt(batch, index) === undefined

/** Moves a stream's evaluation past its next thunk (to the next batch after a batch's last). */
function advance (stream: Stream): void {
  const batch = stream.held.get(stream.evalNext) as Batch
  stream.evalIndex = (thunkAt(batch, stream.evalIndex) as Thunk).index + 1
  if (thunkAt(batch, stream.evalIndex) !== undefined) return
  stream.evalNext++
  stream.evalIndex = 0
}

/** How many seqs behind evaluation a stream still remembers which held nothing for this replica. */
const VOIDS_KEPT = 4096

/** Batches a partitioned replica moved past (some of their thunks skipped, not settled here) leave memory. */
function releaseEvaluated (s: PeerState): void {
  const record = s.epochs.get(s.evaluatingEpoch)
  if (record === undefined) return
  for (const stream of record.streams.values()) {
    for (const seq of stream.held.keys()) if (seq < stream.evalNext) stream.held.delete(seq)
    // Kept a while past evaluation: a voter that stores parts answers gaps of its set with them (partial.ts).
    if ((stream.voids?.size ?? 0) > VOIDS_KEPT) for (const seq of stream.voids ?? []) if (seq + VOIDS_KEPT / 2 < stream.evalNext) stream.voids?.delete(seq)
  }
}

/** The applier settled a run: answer its callers, record digest checkpoints, and take the next run. */
export function onRunApplied (s: PeerState, run: readonly Thunk[], applied: AppliedRun, plan?: RunPlan): void {
  if (s.evaluation === 'running') s.evaluation = 'idle'
  if (s.phase === 'closed') return
  const record = s.epochs.get(s.evaluatingEpoch) as EpochRecord
  s.hasher = Hasher.restore(applied.cursor.digest)
  s.stateDigest = applied.cursor.state
  s.lastEvaluated = applied.cursor.last
  s.evaluatedCount = applied.cursor.count
  s.frontier = maxTimestamp(s.frontier, applied.cursor.frontier)
  for (let i = 0; i < run.length; i++) {
    const thunk = run[i] as Thunk
    // A batch stays held until its last thunk is settled (a partitioned replica's, until evaluation moved past it: releaseEvaluated).
    const stream = plan === undefined ? record.streams.get(thunk.coordinator) : undefined
    if (stream !== undefined && thunk.index === stream.held.get(thunk.seq)?.thunks.at(-1)?.index) stream.held.delete(thunk.seq)
    const result = applied.results[i]
    if (result === undefined) continue
    if (s.minted.get(thunk.clientTxnId) === thunk.ts) s.minted.delete(thunk.clientTxnId)
    resolveWaiters(s, thunk.clientTxnId, result)
  }
  if (plan !== undefined) {
    releaseEvaluated(s)
    afterRun(s, run, plan, applied)
    recordPartStates(s, applied)
  }
  count(s, 'evaluated', run.length)
  recordStates(s, applied.cursor.count - run.length, applied.states)
  for (const c of applied.checkpoints) {
    s.checkpoints.set(c.count, c.digest)
    if (s.checkpoints.size > C.CHECKPOINTS_KEPT) s.checkpoints.delete(s.checkpoints.keys().next().value as number)
  }
  emit(s, { t: 'event', event: { t: 'applied', written: applied.written, frontier: s.frontier } })
  serveReads(s)
  kickEvaluator(s)
}
