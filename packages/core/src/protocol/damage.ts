import { count, emit, errorInfo, log } from './emit.js'
import type { Input } from './effects.js'
import { cutOff } from './cut.js'
import type { Thunk } from '../types.js'
import type { PeerState } from './state.js'
import { dropExport } from './snapshot-export.js'

/**
 * Storage faults the store found (a record failing its check: see the
 * `Store` contract). Nothing damaged is used:
 * - a damaged batch this replica still needs is fetched again (gap fill asks
 *   for it like any missing one) and rewritten, which replaces the bad
 *   record. Until then the replica promises nothing in an epoch change: it
 *   acked that batch once, and a report leaving it out could let a majority
 *   of promises abort a batch that is on a majority and maybe evaluated;
 * - damaged state (a value, an exactly-once record, an outcome) stops
 *   evaluation and reads, and the replica heals by snapshot (snapshot.ts),
 *   which replaces every value and record.
 * A damaged cursor heals by snapshot as well (recover.ts). Other damaged meta
 * records (configuration, decisions, promises, lease) are not repaired: the
 * peer does not open (StoreCorruptionError), and the replica is made again
 * from the group.
 */

/** Batches of `coordinator` in `epoch` the store found damaged: those still needed are asked for again. */
export function noteDamagedBatches (s: PeerState, coordinator: string, epoch: number, seqs: readonly number[]): void {
  if (seqs.length === 0) return
  count(s, 'batch-damaged', seqs.length)
  log(s, 'batch-damaged', { coordinator, epoch, seqs })
  const record = s.epochs.get(epoch)
  const stream = record?.streams.get(coordinator)
  if (record === undefined || stream === undefined) return
  for (const seq of seqs) {
    if (seq < stream.evalNext || cutOff(record, stream, seq)) continue
    const held = stream.held.get(seq)
    if (held !== undefined) {
      // Still in memory: writing it again repairs the record.
      s.persistQueue.push(held)
      continue
    }
    ;(stream.damaged ??= new Set()).add(seq)
    // A coordinator that lost its own batch never reuses its seq.
    if (coordinator === s.id && record === s.current) s.current.coordinator.nextSeq = Math.max(s.current.coordinator.nextSeq, seq + 1)
  }
  stream.gapAskedAt = -Infinity
}

/** Whether this replica lacks a batch of the current epoch it once persisted (it must not promise). */
export function lacksDamaged (s: PeerState): boolean {
  for (const stream of s.current.streams.values()) if (stream.damaged !== undefined && stream.damaged.size > 0) return true
  return false
}

/**
 * A record damaged on disk is found when something reads it; one nothing
 * reads (a key no transaction touches) would lie there until a snapshot
 * export met it. So every `scrubIntervalMs` a replica reads its whole state
 * back (a store reader, a part at a time), not while it heals or fetches.
 */
export function scrubDue (s: PeerState): number {
  const h = s.history
  return h.scrubbing || h.heal !== undefined || h.fetch !== undefined ? Infinity : h.scrubbedAt + s.options.scrubIntervalMs
}

export function tickScrub (s: PeerState): void {
  if (s.now < scrubDue(s)) return
  s.history.scrubbing = true
  s.history.scrubbedAt = s.now
  emit(s, { t: 'scrub', at: s.frontier })
}

export function onScrubDone (s: PeerState): void {
  s.history.scrubbing = false
  count(s, 'scrubs')
}

/** The store refused to answer with a damaged record of the state: stop using the state and heal it by snapshot. */
export function onStateDamaged (s: PeerState, error: { readonly name: string, readonly message: string }, read: number | undefined, run: readonly Thunk[] | undefined): void {
  count(s, 'state-damaged')
  s.history.scrubbing = false
  log(s, 'state-damaged', { error: error.message, during: read !== undefined ? 'read' : run !== undefined ? 'run' : 'other' })
  // The read waits for the healed state.
  const op = read === undefined ? undefined : s.reads.get(read)
  if (op !== undefined) op.phase = 'held'
  if (run !== undefined && s.evaluation === 'running') {
    // Nothing of the run settled: evaluation stands where it began (the snapshot's cursor then moves it on).
    const record = s.epochs.get(s.evaluatingEpoch)
    const seen = new Set<string>()
    for (const t of run) {
      const stream = record?.streams.get(t.coordinator)
      if (stream === undefined || seen.has(t.coordinator)) continue
      seen.add(t.coordinator)
      stream.evalNext = t.seq
      stream.evalIndex = t.index
    }
    // A partitioned replica's other streams may have moved past batches it skipped: those leave memory.
    if (s.parts !== undefined) for (const stream of record?.streams.values() ?? []) for (const seq of stream.held.keys()) if (seq < stream.evalNext) stream.held.delete(seq)
    s.evaluation = 'idle'
  }
  // No snapshot is served from a damaged state: exports end (their requesters ask another voter), and
  // evaluation held for one to begin goes on.
  for (const id of s.history.exports.keys()) dropExport(s, id)
  if (s.history.exportWanted !== undefined && s.evaluation === 'held' && s.history.fetch?.importing !== true) s.evaluation = 'idle'
  s.history.exportWanted = undefined
  if (s.history.heal === undefined) {
    s.history.heal = { count: s.evaluatedCount }
    count(s, 'heal-started')
  }
}

/**
 * A store operation's failure as the protocol takes it (drivers call this):
 * a damaged record (StoreCorruptionError) is `state-damaged` with what was
 * under way; any other error is rethrown, and stops the peer.
 */
export function damagedInput (err: unknown, during: { readonly read?: number, readonly run?: readonly Thunk[] } = {}): Input {
  if ((err as Error).name !== 'StoreCorruptionError') throw err
  return { t: 'state-damaged', error: errorInfo(err), ...during }
}
