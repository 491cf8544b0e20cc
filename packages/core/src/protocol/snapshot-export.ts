import * as C from '../constants.js'
import type { SnapshotPart } from '../store.js'
import { StateDigest } from '../state-digest.js'
import type { Timestamp } from '../timestamp.js'
import { count, emit, log, send } from './emit.js'
import type { SnapshotExport } from './history-state.js'
import { liveCursor } from './evaluator.js'
import { roleOf, type PeerState } from './state.js'
import { isPlaced } from './partitions.js'

/**
 * The serving side of snapshot catch-up (DESIGN §11, issue 20). A voter asked
 * for a snapshot pauses evaluation only until its store opened a reader on
 * its state at its frontier (a view that later writes do not touch), then
 * streams it: it reads the next chunk just ahead of the requests, sends each
 * chunk when asked, and holds only the chunks the requester may still ask
 * for. Neither the snapshot's size nor its digest is known before the last
 * chunk is read: the digest is the cursor's state digest plus every record
 * read, and travels with the last chunk.
 *
 * A voter streams at most MAX_SNAPSHOT_EXPORTS snapshots at once, each held
 * for SNAPSHOT_LEASE_MS after the last request.
 */

/** How long an export is held after its last request: a whole one only until its requester would have asked again. */
export function leaseOf (e: SnapshotExport): number {
  return e.done ? C.SNAPSHOT_RETRY_MS * 2 ** (C.SNAPSHOT_TRIES + 1) : C.SNAPSHOT_LEASE_MS
}

/** Whether some current voter collected history this replica still needs (it reported so, or answered a gap request so). */
export function behindHorizon (s: PeerState): boolean {
  if (s.history.gapGoneAt > -Infinity) return true
  for (const [v, r] of s.history.reported) if (v !== s.id && (s.current.voters.includes(v) || s.parts?.placement.voters.includes(v) === true) && r.gc > s.frontier) return true
  return false
}

/** Drops an export and closes its reader. */
export function dropExport (s: PeerState, id: string): void {
  if (!s.history.exports.delete(id)) return
  emit(s, { t: 'close-snapshot', id })
}

/** A request for chunk `chunk`: from the export held for `id`, or (its first chunk) an export opened for the sender. */
export function onSnapshotRequest (s: PeerState, from: string, id: string, chunk: number): void {
  const h = s.history
  const e = h.exports.get(id)
  if (e !== undefined) {
    if (e.to === from) onChunkAsked(s, id, e, chunk)
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
      dropExport(s, evict[0])
      others--
      count(s, 'snapshot-evicted')
    }
  }
  // (In a partitioned group a placed replica serves its partitions' snapshots, a voter now or not: partitions.ts.)
  const declined = roleOf(s) !== 'voter' && !isPlaced(s) ? 'not a voter' : h.heal !== undefined ? 'healing' : behindHorizon(s) ? 'behind' : chunk !== 0 ? 'export gone' : h.exportWanted !== undefined ? 'exporting' : others >= C.MAX_SNAPSHOT_EXPORTS ? 'exports full' : undefined
  if (declined !== undefined) {
    count(s, 'snapshot-declined')
    log(s, 'snapshot-declined', { to: from, why: declined })
    send(s, from, { t: 'snap-no', id, why: declined })
    return
  }
  h.exportWanted = { id, to: from }
  beginExport(s)
}

/** Evaluation pauses for the export (kickEvaluator starts no run while one is wanted) until the reader is open; taken between runs. */
export function beginExport (s: PeerState): void {
  const w = s.history.exportWanted
  if (w === undefined || s.evaluation !== 'idle') return
  s.evaluation = 'held'
  log(s, 'snapshot-export', { to: w.to, frontier: s.frontier })
  emit(s, { t: 'export-snapshot', id: w.id, to: w.to, at: s.frontier })
}

/** The reader is open on the state below `at`: evaluation goes on, and the first chunks are read. */
export function onSnapshotExported (s: PeerState, id: string, to: string, at: Timestamp): void {
  const h = s.history
  if (h.exportWanted?.id === id) h.exportWanted = undefined
  // Evaluation was held since the export began, so the store held exactly the state below this peer's
  // frontier, which may lie past the stored cursor (epochs and watermark steps with no thunk to evaluate).
  const cursor = liveCursor(s)
  if (s.evaluation === 'held' && h.fetch?.importing !== true) s.evaluation = 'idle'
  // Healing (its store holds a damaged record), it serves no snapshot of its state.
  if (at !== cursor.frontier || h.heal !== undefined) {
    emit(s, { t: 'close-snapshot', id })
    return
  }
  // One export per requester: a new request replaces the last (a requester that started over).
  for (const [old, e] of h.exports) if (e.to === to) dropExport(s, old)
  const e: SnapshotExport = {
    to,
    at,
    cursor,
    chunks: new Map(),
    next: 0,
    reading: false,
    asked: 0,
    keepFrom: 0,
    last: undefined,
    digest: cursor.state === undefined ? new StateDigest() : StateDigest.restore(cursor.state),
    lastAsked: s.now,
    done: false
  }
  h.exports.set(id, e)
  count(s, 'snapshots-served')
  log(s, 'snapshot-exported', { to, frontier: cursor.frontier })
  readAhead(s, id, e)
}

function onChunkAsked (s: PeerState, id: string, e: SnapshotExport, chunk: number): void {
  e.lastAsked = s.now
  // The requester asks for no chunk more than SNAPSHOT_WINDOW - 1 past the first it lacks: it holds those before.
  e.keepFrom = Math.max(e.keepFrom, chunk - C.SNAPSHOT_WINDOW + 1)
  for (const k of e.chunks.keys()) if (k < e.keepFrom) e.chunks.delete(k)
  if (e.last !== undefined && chunk > e.last) return
  e.asked = Math.max(e.asked, chunk)
  if (e.chunks.has(chunk)) serveChunk(s, id, e, chunk)
  else readAhead(s, id, e)
}

/** Reads the next chunk while the requester has asked for it or for the one before (one read at a time). */
function readAhead (s: PeerState, id: string, e: SnapshotExport): void {
  if (e.reading || e.last !== undefined || e.next > e.asked + 1) return
  e.reading = true
  emit(s, { t: 'read-snapshot', id, maxBytes: s.options.snapshotChunkBytes })
}

/** The reader's next part: the next chunk, sent at once if it was asked for. */
export function onSnapshotRead (s: PeerState, id: string, part: SnapshotPart): void {
  const e = s.history.exports.get(id)
  if (e === undefined || !e.reading) return
  e.reading = false
  const chunk = e.next++
  if (e.cursor.state === undefined) for (const [k, v] of part.entries) e.digest.entry(k, v)
  for (const [txn, r] of part.txns) e.digest.record(txn, r)
  if (part.done) e.last = chunk
  if (chunk >= e.keepFrom) e.chunks.set(chunk, { entries: part.entries, txns: part.txns })
  if (chunk <= e.asked && chunk >= e.keepFrom) serveChunk(s, id, e, chunk)
  readAhead(s, id, e)
}

function serveChunk (s: PeerState, id: string, e: SnapshotExport, chunk: number): void {
  const c = e.chunks.get(chunk)
  if (c === undefined) return
  count(s, 'snapshot-chunks-served')
  const last = chunk === e.last
  // Once the last chunk went out, the export is kept only as long as the requester may still ask for it again.
  if (last) e.done = true
  send(s, e.to, { t: 'snap-chunk', id, at: e.at, cursor: e.cursor, chunk, last, ...(last ? { digest: e.digest.value } : {}), entries: c.entries, txns: c.txns })
}
