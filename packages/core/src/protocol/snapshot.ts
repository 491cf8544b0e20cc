import * as C from '../constants.js'
import { Hasher } from '../hash.js'
import { StateDigest } from '../state-digest.js'
import { SnapshotMismatchError } from '../errors.js'
import type { StoreSnapshot } from '../store.js'
import { maxTimestamp, type Timestamp } from '../timestamp.js'
import type { Cursor } from '../types.js'
import { checkValue, type Value } from '../value.js'
import { count, emit, log, send } from './emit.js'
import type { SnapshotExport, SnapshotFetch } from './history-state.js'
import { liveCursor } from './evaluator.js'
import { serveReads } from './reads.js'
import { META } from './meta.js'
import { advanceHave, roleOf, type PeerState } from './state.js'
import { askVoters, beginVote, restartStates, tallyVote } from './state-votes.js'

/**
 * Snapshot catch-up (DESIGN §11, issue 20). A replica whose frontier lies
 * below a current voter's GC point can no longer gap-fill from there: it
 * fetches that voter's state at the voter's cursor instead, chunk by chunk
 * (one request per chunk: the requester's pace is the flow control, and a
 * dropped stream resumes at the chunk it lacks, against the same export),
 * imports it in one atomic store write while evaluation pauses, moves its
 * evaluation to the cursor and gap-fills the batches after it.
 *
 * A voter exports at most MAX_SNAPSHOT_EXPORTS snapshots at once, each a
 * copy of its state held for SNAPSHOT_LEASE_MS after the last request.
 */

/** How long an export is held after its last request: a whole one only until its requester would have asked again. */
function leaseOf (e: SnapshotExport): number {
  return e.done ? C.SNAPSHOT_RETRY_MS * 2 ** (C.SNAPSHOT_TRIES + 1) : C.SNAPSHOT_LEASE_MS
}

/** Whether some current voter collected history this replica still needs (it reported so, or answered a gap request so). */
export function behindHorizon (s: PeerState): boolean {
  if (s.history.gapGoneAt > -Infinity) return true
  for (const [v, r] of s.history.reported) if (v !== s.id && s.current.voters.includes(v) && r.gc > s.frontier) return true
  return false
}

/** Timeout: start a fetch when behind, resend an unanswered request, turn to another voter after SNAPSHOT_TRIES. */
export function pursueSnapshot (s: PeerState): void {
  const h = s.history
  if (s.phase !== 'running') return
  for (const [id, e] of h.exports) if (s.now - e.lastAsked > leaseOf(e)) h.exports.delete(id)
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
    if (++f.tries < C.SNAPSHOT_TRIES) askVoters(s, f)
    else refuse(s, new SnapshotMismatchError(`no majority of the voters vouched for the state ${f.source} sent in time`))
    return
  }
  count(s, 'snapshot-retry')
  // Nothing received yet: there is nothing to resume, so the next voter is asked at once (the first may be
  // down, or not know this peer yet). Part of a stream in: the same export is asked again, then another voter.
  if (f.offset > 0 && ++f.tries < C.SNAPSHOT_TRIES) ask(s, f)
  else startFetch(s)
}

/**
 * How long a request waits for its chunk before it is sent again: doubling
 * with each try of a stream under way; for the first chunk, doubling with
 * each voter asked in turn (a large export takes its source a while).
 */
function retryAfter (s: PeerState, f: SnapshotFetch): number {
  if (f.offset > 0) return C.SNAPSHOT_RETRY_MS * 2 ** f.tries
  const voters = Math.max(1, s.current.voters.length - 1)
  return C.SNAPSHOT_FIRST_CHUNK_MS * 2 ** Math.min(3, Math.floor((s.history.fetches - 1) / voters))
}

function startFetch (s: PeerState): void {
  const h = s.history
  // Healing, from a voter of the majority this replica disagrees with; else from any other voter.
  const sources = (h.heal?.voters ?? s.current.voters).filter(v => v !== s.id)
  if (sources.length === 0) return
  const source = sources[h.fetches % sources.length] as string
  // A `gone` answer is taken once: if this fetch comes to nothing and the gap is still there, gap fill hears it again.
  h.gapGoneAt = -Infinity
  h.fetch = { id: `${s.id}#${++h.fetches}`, source, offset: 0, starts: undefined, asked: new Set(), ahead: new Map(), total: undefined, at: undefined, cursor: undefined, digest: undefined, entries: [], txns: [], askedAt: s.now, tries: 0, vote: undefined, ready: false, importing: false }
  log(s, 'snapshot-fetch', { from: source, frontier: s.frontier })
  ask(s, h.fetch)
}

/**
 * Keeps up to SNAPSHOT_WINDOW chunks asked for: the one the stream goes on
 * with and (once the first chunk said where they start) the next ones, so a
 * chunk's round trip overlaps the last one's handling. `again`: resend those
 * still out (a retry).
 */
function ask (s: PeerState, f: SnapshotFetch, again = true): void {
  f.askedAt = s.now
  const next = f.starts === undefined ? [f.offset] : [f.offset, ...f.starts.filter(o => o > f.offset && !f.ahead.has(o))].slice(0, C.SNAPSHOT_WINDOW)
  for (const offset of next) {
    if (!again && f.asked.has(offset)) continue
    f.asked.add(offset)
    send(s, f.source, { t: 'snap-req', id: f.id, offset })
  }
}

/** A chunk of the snapshot being fetched (anything else is stale and dropped). */
export function onSnapshotChunk (s: PeerState, from: string, m: { id: string, at: Timestamp, cursor: Cursor, offset: number, total: number, digest: string, starts?: readonly number[], entries: ReadonlyArray<readonly [string, Value]>, txns: ReadonlyArray<readonly [string, string]> }): void {
  const f = s.history.fetch
  if (f === undefined || f.ready || f.vote !== undefined || m.id !== f.id || from !== f.source || (m.offset !== f.offset && !f.asked.has(m.offset))) return
  if (f.total === undefined) {
    f.total = m.total
    f.at = m.at
    f.cursor = m.cursor
    f.digest = m.digest
  } else if (m.total !== f.total || m.at !== f.at || m.digest !== f.digest) {
    // One export answers every chunk of an id: a change means the source restarted. Start over.
    refuse(s, 'the snapshot changed between chunks')
    return
  }
  count(s, 'snapshot-chunks')
  f.starts ??= m.starts
  f.asked.delete(m.offset)
  f.ahead.set(m.offset, { entries: m.entries, txns: m.txns })
  // Every chunk that continues the stream, in order (one that came ahead waits for those before it).
  for (let c = f.ahead.get(f.offset); c !== undefined && c.entries.length + c.txns.length > 0; c = f.ahead.get(f.offset)) {
    f.ahead.delete(f.offset)
    for (const e of c.entries) f.entries.push([e[0], e[1]])
    for (const r of c.txns) f.txns.push([r[0], r[1]])
    f.offset += c.entries.length + c.txns.length
  }
  for (const o of f.ahead.keys()) if (o < f.offset) f.ahead.delete(o)
  f.tries = 0
  if (f.offset < f.total) {
    ask(s, f, false)
    return
  }
  const cursor = f.cursor as Cursor
  // Healing, a snapshot at this replica's own frontier replaces its state as well.
  const healing = s.history.heal !== undefined
  if ((healing ? cursor.frontier < s.frontier : cursor.frontier <= s.frontier) || cursor.frontier !== f.at) {
    refuse(s, 'the snapshot is not ahead of this replica')
    return
  }
  // Every entry and record as the source exported it, none lost, changed or added on the way (or in its memory).
  // And the values as the source's own evaluation says its state is (a source whose store was damaged
  // exports what it holds). Records are not in that digest: replicas collect them at different moments.
  // One pass over the values: the whole snapshot's digest is theirs plus the records'.
  const values = StateDigest.lanesOf(f.entries)
  const whole = StateDigest.restore(values)
  for (const [id, r] of f.txns) whole.record(id, r)
  if (whole.value !== f.digest || (cursor.state !== undefined && StateDigest.valueOf(values) !== StateDigest.valueOf(cursor.state))) {
    count(s, 'snapshot-mismatch')
    refuse(s, new SnapshotMismatchError(`the snapshot from ${f.source} does not add up to the digest it sent; fetching it from another voter`))
    return
  }
  // Self-consistent; then the other current voters are asked to vouch for it (a majority, its source included).
  f.tries = 0
  if (beginVote(s, f)) ready(s, f)
}

/** A majority vouched: evaluation pauses (kickEvaluator starts no run while `ready`) and the import lands between runs. */
function ready (s: PeerState, f: SnapshotFetch): void {
  f.vote = undefined
  f.ready = true
  if (s.evaluation === 'idle') beginImport(s, f)
}

/** A voter's state digest at the snapshot's count: import once a majority agrees, refuse once it cannot. */
export function onSnapshotVote (s: PeerState, from: string, at: number, state: readonly [number, number] | undefined): void {
  const f = s.history.fetch
  const verdict = tallyVote(s, from, at, state)
  if (f === undefined || verdict === undefined) return
  if (verdict === 'import') {
    ready(s, f)
    return
  }
  count(s, 'snapshot-outvoted')
  refuse(s, new SnapshotMismatchError(`no majority of the voters vouches for the state ${f.source} sent at count ${at}; fetching it from another voter`))
}

function refuse (s: PeerState, why: string | Error): void {
  count(s, 'snapshot-refused')
  log(s, 'snapshot-refused', { from: s.history.fetch?.source, ...(typeof why === 'string' ? { why } : { error: why.name, why: why.message }) })
  s.history.fetch = undefined
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
  log(s, 'snapshot-import', { entries: f.entries.length, records: f.txns.length })
  const snapshot: StoreSnapshot = { at: f.at as Timestamp, entries: f.entries, txns: f.txns, meta: [[META.cursor, cursor as unknown as Value]] }
  emit(s, { t: 'import-snapshot', snapshot, cursor })
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
      if (stream.have < stream.evalNext - 1) stream.have = stream.evalNext - 1
      advanceHave(stream)
    }
  }
  s.frontier = maxTimestamp(s.frontier, cursor.frontier)
  s.lastEvaluated = cursor.last
  s.evaluatedCount = cursor.count
  s.hasher = Hasher.restore(cursor.digest)
  s.stateDigest = cursor.state
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

/** A request for a chunk: from the export held for `id`, or (first request) an export made for the sender. */
export function onSnapshotRequest (s: PeerState, from: string, id: string, offset: number): void {
  const h = s.history
  const e = h.exports.get(id)
  if (e !== undefined) {
    if (e.to === from) serveChunk(s, id, offset)
    return
  }
  // Only a voter serves (an observer could be as far behind as the asker), and not while it heals itself or is
  // behind itself; one new export at a time, and a requester's new export replaces its last.
  let others = 0
  for (const x of h.exports.values()) if (x.to !== from) others++
  // When full, an export whose last chunk went out makes room first (it is kept only for a lost chunk's
  // retry); then, for a voter, an observer's: a voter may be what the group needs to vouch for others'.
  if (others >= C.MAX_SNAPSHOT_EXPORTS) {
    const evict = [...h.exports].find(([, x]) => x.to !== from && x.done) ??
      (s.current.voters.includes(from) ? [...h.exports].find(([, x]) => x.to !== from && !s.current.voters.includes(x.to)) : undefined)
    if (evict !== undefined) {
      h.exports.delete(evict[0])
      others--
      count(s, 'snapshot-evicted')
    }
  }
  const declined = roleOf(s) !== 'voter' ? 'not a voter' : h.heal !== undefined ? 'healing' : behindHorizon(s) ? 'behind' : offset !== 0 ? 'export gone' : h.exportWanted !== undefined ? 'exporting' : others >= C.MAX_SNAPSHOT_EXPORTS ? 'exports full' : undefined
  if (declined !== undefined) {
    count(s, 'snapshot-declined')
    log(s, 'snapshot-declined', { to: from, why: declined })
    return
  }
  h.exportWanted = { id, to: from }
  beginExport(s)
}

/** Evaluation pauses for the export (kickEvaluator starts no run while one is wanted); taken between runs. */
export function beginExport (s: PeerState): void {
  const w = s.history.exportWanted
  if (w === undefined || s.evaluation !== 'idle') return
  s.evaluation = 'held'
  emit(s, { t: 'export-snapshot', id: w.id, to: w.to, at: s.frontier })
}

export function onSnapshotExported (s: PeerState, id: string, to: string, snapshot: StoreSnapshot): void {
  const h = s.history
  if (h.exportWanted?.id === id) h.exportWanted = undefined
  // Evaluation was held since the export began, so the store held exactly the state below this peer's
  // frontier, which may lie past the stored cursor (epochs and watermark steps with no thunk to evaluate).
  const cursor = liveCursor(s)
  if (s.evaluation === 'held' && h.fetch?.importing !== true) s.evaluation = 'idle'
  if (snapshot.at !== cursor.frontier) return
  // One export per requester: a new request replaces the last (a requester that started over).
  for (const [old, e] of h.exports) if (e.to === to) h.exports.delete(old)
  const starts = [0]
  const total = snapshot.entries.length + snapshot.txns.length
  for (let end = chunkEnd(snapshot, 0); end < total; end = chunkEnd(snapshot, end)) starts.push(end)
  h.exports.set(id, { to, at: cursor.frontier, cursor, entries: snapshot.entries, txns: snapshot.txns, digest: StateDigest.of(snapshot.entries, snapshot.txns), starts, lastAsked: s.now, done: false })
  count(s, 'snapshots-served')
  log(s, 'snapshot-exported', { to, entries: snapshot.entries.length, records: snapshot.txns.length, frontier: cursor.frontier })
  serveChunk(s, id, 0)
}

/** Where the chunk from `offset` ends: entries then records, up to SNAPSHOT_CHUNK_BYTES (at least one item). */
function chunkEnd (e: { readonly entries: ReadonlyArray<readonly [string, Value]>, readonly txns: ReadonlyArray<readonly [string, string]> }, offset: number): number {
  const total = e.entries.length + e.txns.length
  let bytes = 0
  let i = offset
  for (; i < total && (i === offset || bytes < C.SNAPSHOT_CHUNK_BYTES); i++) {
    if (i < e.entries.length) {
      const entry = e.entries[i] as readonly [string, Value]
      bytes += 3 * entry[0].length + checkValue(entry[1], Infinity)
    } else {
      const record = e.txns[i - e.entries.length] as readonly [string, string]
      bytes += 3 * (record[0].length + record[1].length)
    }
  }
  return i
}

/** The chunk from `offset` (the first one says where every chunk starts). */
function serveChunk (s: PeerState, id: string, offset: number): void {
  const e = s.history.exports.get(id)
  if (e === undefined) return
  e.lastAsked = s.now
  const total = e.entries.length + e.txns.length
  if (offset > total) return
  // The chunks the export was cut into when taken (a resumed stream may ask from elsewhere: cut afresh).
  const k = e.starts.indexOf(offset)
  const end = k < 0 ? chunkEnd(e, offset) : e.starts[k + 1] ?? total
  const entries = e.entries.slice(Math.min(offset, e.entries.length), Math.min(end, e.entries.length))
  const txns = e.txns.slice(Math.max(0, offset - e.entries.length), Math.max(0, end - e.entries.length))
  count(s, 'snapshot-chunks-served')
  // Once the last chunk went out, the export is kept only as long as the requester may still ask for it again.
  if (end === total) e.done = true
  send(s, e.to, { t: 'snap-chunk', id, at: e.at, cursor: e.cursor, offset, total, digest: e.digest, ...(offset === 0 ? { starts: e.starts } : {}), entries, txns })
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
