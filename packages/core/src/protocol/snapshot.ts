import * as C from '../constants.js'
import { Hasher } from '../hash.js'
import { covering, holdsAll, restoreHolding } from './partitions.js'
import { askPartVoters, beginPartVote, restartTrail, tallyPartVote } from './part-votes.js'
import { StateDigest } from '../state-digest.js'
import { SnapshotMismatchError } from '../errors.js'
import type { StagedDigest } from '../store.js'
import { maxTimestamp, type Timestamp } from '../timestamp.js'
import type { Cursor } from '../types.js'
import type { Value } from '../value.js'
import { count, emit, log, send } from './emit.js'
import type { SnapshotFetch } from './history-state.js'
import { serveReads } from './reads.js'
import { META } from './meta.js'
import { behindHorizon, beginExport, dropExport, leaseOf } from './snapshot-export.js'
import type { PeerState } from './state.js'
import { advanceHave } from './cut.js'
import { askVoters, beginVote, restartStates, tallyVote } from './state-votes.js'

/**
 * Snapshot catch-up (DESIGN §11, issue 20). A replica whose frontier lies
 * below a current voter's GC point can no longer gap-fill from there: it
 * fetches that voter's state at the voter's cursor instead, chunk by chunk
 * (one request per chunk, SNAPSHOT_WINDOW of them out at once: the
 * requester's pace is the flow control, and a dropped stream resumes at the
 * chunk it lacks, against the same export), has a majority of the voters
 * vouch for it, imports it in one atomic store write while evaluation
 * pauses, moves its evaluation to the cursor and gap-fills the batches after
 * it. The serving side is snapshot-export.ts.
 */

/** Timeout: start a fetch when behind, resend an unanswered request, turn to another voter after SNAPSHOT_TRIES. */
export function pursueSnapshot (s: PeerState): void {
  const h = s.history
  if (s.phase !== 'running') return
  for (const [id, e] of h.exports) if (s.now - e.lastAsked > leaseOf(e)) dropExport(s, id)
  const f = h.fetch
  beginExport(s)
  if (f === undefined) {
    if (behindHorizon(s) || h.heal !== undefined) startFetch(s)
    return
  }
  if (f.ready) {
    if (!f.importing && s.evaluation === 'idle') beginImport(s, f)
    return
  }
  if (s.now - f.askedAt < retryAfter(s, f)) return
  if (f.vote !== undefined) {
    // Voters that have not answered are asked again; after SNAPSHOT_TRIES, another source's snapshot is fetched.
    if (++f.tries < C.SNAPSHOT_TRIES) { if (s.parts === undefined) askVoters(s, f); else askPartVoters(s, f) }
    else refuse(s, new SnapshotMismatchError(`no majority of the voters vouched for the state ${f.source} sent in time`))
    return
  }
  count(s, 'snapshot-retry')
  // Nothing received yet: there is nothing to resume, so the next voter is asked at once (the first may be
  // down, or not know this peer yet). Part of a stream in: the same export is asked again, then another voter.
  if (f.next > 0 && ++f.tries < C.SNAPSHOT_TRIES) ask(s, f)
  else startFetch(s)
}

/**
 * How long a request waits for its chunk before it is sent again: doubling
 * with each try of a stream under way; for the first chunk, doubling with
 * each voter asked in turn (a large export takes its source a while).
 */
function retryAfter (s: PeerState, f: SnapshotFetch): number {
  if (f.next > 0) return C.SNAPSHOT_RETRY_MS * 2 ** f.tries
  const voters = Math.max(1, s.current.voters.length - 1)
  return C.SNAPSHOT_FIRST_CHUNK_MS * 2 ** Math.min(3, Math.floor((s.history.fetches - 1) / voters))
}

function startFetch (s: PeerState): void {
  const h = s.history
  // Healing, from a voter of the majority this replica disagrees with; else from any other voter.
  const all = (h.heal?.voters ?? s.current.voters).filter(v => v !== s.id)
  if (all.length === 0) return
  // Those heard from lately first: a voter gone for good would cost a whole first-chunk timeout.
  const heard = all.filter(v => s.now - (s.current.lastHeard.get(v) ?? -Infinity) <= s.options.suspectMs)
  // (A partitioned replica's snapshot comes from a replica of every partition it holds: partitions.ts.)
  const sources = covering(s, heard.length > 0 ? heard : all, all)
  if (sources.length === 0) return
  const source = sources[h.fetches % sources.length] as string
  // A `gone` answer is taken once: if this fetch comes to nothing and the gap is still there, gap fill hears it again.
  h.gapGoneAt = -Infinity
  abandon(s)
  h.fetch = { id: `${s.id}#${++h.fetches}`, source, next: 0, received: 0, staged: 0, asked: new Set(), ahead: new Map(), last: undefined, at: undefined, cursor: undefined, digest: undefined, values: new StateDigest(), records: new StateDigest(), askedAt: s.now, tries: 0, vote: undefined, ready: false, importing: false }
  log(s, 'snapshot-fetch', { from: source, frontier: s.frontier })
  ask(s, h.fetch)
}

/**
 * Keeps up to SNAPSHOT_WINDOW chunks asked for: the one the stream goes on
 * with and (once the first is in: it opened the export) the next ones, so a
 * chunk's round trip overlaps the last one's handling; and no chunk more than
 * twice the window past those the store staged (a slow store slows the
 * stream instead of piling chunks up in memory). `again`: resend those still
 * out (a retry).
 */
function ask (s: PeerState, f: SnapshotFetch, again = true): void {
  f.askedAt = s.now
  const end = Math.min(f.at === undefined ? f.next : f.next + C.SNAPSHOT_WINDOW - 1, f.staged + 2 * C.SNAPSHOT_WINDOW - 1, f.last ?? Infinity)
  for (let chunk = f.next; chunk <= end; chunk++) {
    if (f.ahead.has(chunk) || (!again && f.asked.has(chunk))) continue
    f.asked.add(chunk)
    send(s, f.source, { t: 'snap-req', id: f.id, chunk })
  }
}

/** Whether a snapshot at `cursor` would move this replica on (healing, one at its own frontier replaces its state as well). */
function ahead (s: PeerState, cursor: Cursor): boolean {
  return s.history.heal !== undefined ? cursor.frontier >= s.frontier : cursor.frontier > s.frontier
}

/** A chunk of the snapshot being fetched (anything else is stale and dropped). */
export function onSnapshotChunk (s: PeerState, from: string, m: { id: string, at: Timestamp, cursor: Cursor, chunk: number, last: boolean, digest?: string, entries: ReadonlyArray<readonly [string, Value]>, txns: ReadonlyArray<readonly [string, string]> }): void {
  const f = s.history.fetch
  if (f === undefined || f.ready || f.vote !== undefined || m.id !== f.id || from !== f.source || m.chunk < f.next || (m.chunk !== f.next && !f.asked.has(m.chunk))) return
  if (f.at === undefined) {
    if (!ahead(s, m.cursor) || m.cursor.frontier !== m.at) {
      refuse(s, 'the snapshot is not ahead of this replica')
      return
    }
    f.at = m.at
    f.cursor = m.cursor
  } else if (m.at !== f.at) {
    // One export answers every chunk of an id: a change means the source restarted. Start over.
    refuse(s, 'the snapshot changed between chunks')
    return
  }
  if (m.last) {
    f.last = m.chunk
    f.digest = m.digest
  }
  if (f.last !== undefined && (m.chunk > f.last || [...f.ahead.keys()].some(k => k > (f.last as number)))) {
    refuse(s, 'a chunk came after the last')
    return
  }
  count(s, 'snapshot-chunks')
  log(s, 'snapshot-chunk', { chunk: m.chunk, items: m.entries.length + m.txns.length, last: m.last })
  f.asked.delete(m.chunk)
  f.ahead.set(m.chunk, { entries: m.entries, txns: m.txns })
  // Every chunk that continues the stream, in order (one that came ahead waits for those before it), goes
  // to the store as it comes (staged beside the state, not held here); the store answers its digest lanes.
  for (let c = f.ahead.get(f.next); c !== undefined; c = f.ahead.get(f.next)) {
    f.ahead.delete(f.next++)
    f.received += c.entries.length + c.txns.length
    emit(s, { t: 'stage-snapshot', id: f.id, at: f.at, items: c })
  }
  f.tries = 0
  if (f.last === undefined || f.next <= f.last) ask(s, f, false)
}

/**
 * The voter asked declined to export (healing, behind, busy exporting): the
 * next voter is asked after SNAPSHOT_RETRY_MS, not after the wait for a first
 * chunk (up to 24 s). Not at once: with every voter declining, the asks
 * would go round as fast as the network carries them.
 */
export function onSnapshotDeclined (s: PeerState, from: string, id: string): void {
  const f = s.history.fetch
  if (f === undefined || f.id !== id || f.source !== from || f.next > 0 || f.vote !== undefined || f.ready) return
  count(s, 'snapshot-declined-heard')
  f.askedAt = Math.min(f.askedAt, s.now + C.SNAPSHOT_RETRY_MS - retryAfter(s, f))
}

/** The store staged the next chunk of the fetch `id`: once every chunk is, the snapshot is checked and put to the vote. */
export function onSnapshotStaged (s: PeerState, id: string, digest: StagedDigest): void {
  const f = s.history.fetch
  if (f === undefined || f.id !== id) return
  f.values.plus(digest.values)
  f.records.plus(digest.records)
  if (++f.staged <= (f.last ?? Infinity)) {
    // The stream may have waited for the store.
    if (f.next <= (f.last ?? Infinity)) ask(s, f, false)
    return
  }
  const cursor = f.cursor as Cursor
  if (!ahead(s, cursor)) {
    refuse(s, 'the snapshot is not ahead of this replica')
    return
  }
  if (!holdsAll(s, cursor.holding)) {
    refuse(s, 'the snapshot does not hold every partition this replica holds')
    return
  }
  // Every entry and record as the source read them, none lost, changed or added on the way: the source's
  // digest is its evaluation's state digest (what its store should hold) plus the records it read. A source
  // whose store was damaged sends what it holds, which does not add up.
  const whole = StateDigest.restore(f.values.lanes).plus(f.records.lanes)
  if (whole.value !== f.digest || (cursor.state !== undefined && f.values.value !== StateDigest.valueOf(cursor.state))) {
    count(s, 'snapshot-mismatch')
    refuse(s, new SnapshotMismatchError(`the snapshot from ${f.source} does not add up to the digest it sent; fetching it from another voter`))
    return
  }
  // Self-consistent; then the other current voters are asked to vouch for it (a majority, its source included).
  f.tries = 0
  const begun = s.parts === undefined ? beginVote(s, f) : beginPartVote(s, f)
  if (begun === 'mismatch') {
    count(s, 'snapshot-mismatch')
    refuse(s, new SnapshotMismatchError(`the partitions' digests of the snapshot from ${f.source} do not add up to its state digest; fetching it from another voter`))
    return
  }
  if (begun) ready(s, f)
}

/** A majority vouched: evaluation pauses (kickEvaluator starts no run while `ready`) and the import lands between runs. */
function ready (s: PeerState, f: SnapshotFetch): void {
  f.vote = undefined
  f.ready = true
  if (s.evaluation === 'idle') beginImport(s, f)
}

/** A replica's digests of the snapshot's partitions at its frontier: import once each partition is vouched for, refuse once one cannot be. */
export function onPartSnapshotVote (s: PeerState, from: string, at: Timestamp, states: ReadonlyArray<readonly number[]>): void {
  settleVote(s, tallyPartVote(s, from, at, states), `the replicas of a partition do not vouch for the state sent at ${at}`)
}

/** A voter's state digest at the snapshot's count: import once a majority agrees, refuse once it cannot. */
export function onSnapshotVote (s: PeerState, from: string, at: number, state: readonly [number, number] | undefined): void {
  settleVote(s, tallyVote(s, from, at, state), `no majority of the voters vouches for the state sent at count ${at}`)
}

function settleVote (s: PeerState, verdict: 'import' | 'refuse' | undefined, why: string): void {
  const f = s.history.fetch
  if (f === undefined || verdict === undefined) return
  if (verdict === 'import') {
    ready(s, f)
    return
  }
  count(s, 'snapshot-outvoted')
  refuse(s, new SnapshotMismatchError(`${why} (from ${f.source}); fetching it from another voter`))
}

function refuse (s: PeerState, why: string | Error): void {
  count(s, 'snapshot-refused')
  log(s, 'snapshot-refused', { from: s.history.fetch?.source, ...(typeof why === 'string' ? { why } : { error: why.name, why: why.message }) })
  abandon(s)
}

/** The fetch under way is given up: what its store staged is dropped. */
function abandon (s: PeerState): void {
  const f = s.history.fetch
  if (f === undefined) return
  s.history.fetch = undefined
  if (f.next > 0) emit(s, { t: 'drop-snapshot', id: f.id })
}

function beginImport (s: PeerState, f: SnapshotFetch): void {
  const cursor = f.cursor as Cursor
  const epoch = cursor.epoch ?? -1
  // The cursor's epoch must be one this replica holds (evaluating or installed after): it learns newer epochs first.
  if (epoch < s.evaluatingEpoch || !s.epochs.has(epoch)) {
    if (epoch < s.evaluatingEpoch) refuse(s, 'the snapshot is in an epoch this replica finished')
    return
  }
  f.importing = true
  s.evaluation = 'held'
  log(s, 'snapshot-import', { items: f.received })
  emit(s, { t: 'import-snapshot', id: f.id, cursor, meta: [[META.cursor, cursor as unknown as Value]] })
}

/** The snapshot is this replica's state now: evaluation continues from its cursor. */
export function onSnapshotImported (s: PeerState, cursor: Cursor): void {
  const epoch = cursor.epoch as number
  for (const e of s.epochs.keys()) if (e < epoch) s.epochs.delete(e)
  s.evaluatingEpoch = epoch
  const record = s.epochs.get(epoch)
  if (record !== undefined) {
    for (const [c, stream] of record.streams) {
      stream.evalNext = cursor.evalNext[c] ?? 1
      stream.evalIndex = cursor.evalIndex?.[c] ?? 0
      for (const seq of stream.held.keys()) if (seq < stream.evalNext) stream.held.delete(seq)
      // Had from here on only what is held: a cursor behind this replica's own evaluation puts it before batches it
      // evaluated and let go (a partitioned replica does at once), and gap fill asks only past `have`.
      stream.have = stream.evalNext - 1
      advanceHave(stream)
    }
  }
  // The state is the snapshot's: so is the frontier, even below this replica's own (a cursor behind it, see above).
  // Left above, it passed thunks evaluation must still take, and a waiting cross-partition thunk was dropped each run.
  s.frontier = cursor.frontier
  s.lastEvaluated = cursor.last
  s.evaluatedCount = cursor.count
  s.hasher = Hasher.restore(cursor.digest)
  s.stateDigest = cursor.state
  restoreHolding(s, cursor.holding)
  restartTrail(s, cursor)
  // Digest checkpoints (and state digests) of the history before the snapshot are not this replica's any more.
  s.checkpoints.clear()
  restartStates(s, cursor)
  s.lastCheckpointCount = -1
  // Imported in one strict write: durable.
  s.history.durable = maxTimestamp(s.history.durable, cursor.frontier)
  s.history.fetch = undefined
  s.history.gapGoneAt = -Infinity
  if (s.evaluation === 'held') s.evaluation = 'idle'
  if (s.history.heal !== undefined) {
    log(s, 'healed', { count: s.history.heal.count, evaluated: cursor.count })
    count(s, 'healed')
    s.history.heal = undefined
    s.divergence = undefined
  }
  count(s, 'snapshots-installed')
  log(s, 'snapshot-installed', { frontier: cursor.frontier, evaluated: cursor.count, epoch })
  emit(s, { t: 'event', event: { t: 'applied', written: [], frontier: s.frontier, reset: true } })
  serveReads(s)
}

/** When the next snapshot timeout is due (for `nextDue`). */
export function snapshotDue (s: PeerState): number {
  const f = s.history.fetch
  if (f !== undefined) return f.ready ? -Infinity : f.askedAt + retryAfter(s, f)
  if (s.history.exportWanted !== undefined || s.history.heal !== undefined || behindHorizon(s)) return -Infinity
  let due = Infinity
  for (const e of s.history.exports.values()) due = Math.min(due, e.lastAsked + leaseOf(e) + 1)
  return due
}

/**
 * What the store holds, checked when the peer opens against the state digest
 * its cursor carries: a store changed behind the replica's back (a damaged
 * disk, an edited file) heals by snapshot before the replica serves a read
 * or evaluates on it. A cursor from before state digests adopts the store's.
 */
export function onScrubbed (s: PeerState, state: readonly [number, number]): void {
  if (s.stateDigest === undefined) {
    s.stateDigest = state
    return
  }
  if (s.stateDigest[0] === state[0] && s.stateDigest[1] === state[1]) return
  count(s, 'store-damaged')
  log(s, 'store-damaged', { expected: StateDigest.valueOf(s.stateDigest), found: StateDigest.valueOf(state), evaluated: s.evaluatedCount })
  s.history.heal ??= { count: s.evaluatedCount }
}
