import * as C from '../constants.js'
import { timestampTag } from '../timestamp.js'
import type { Batch, Thunk } from '../types.js'
import { sealOpen, writeChunks } from './batcher.js'
import { kickEvaluator } from './evaluator.js'
import { observeTimestamp, scheduleFlush, watermarkEntries } from './promise.js'
import { noticeEpoch } from './reconfig/epoch-news.js'
import { count, emit, log, send } from './emit.js'
import { isInstalling, isSealed, roleOf, type PeerState } from './state.js'
import { advanceHave, cutOff, passes } from './cut.js'
import { noteFeedBatches, projectGap, spannedChunks } from './feeds.js'
import { projectedParts } from './partitions.js'
import { noteDamagedBatches } from './damage.js'
import { gapSources, isDurable, noteSealed, storedParts, storedSet } from './partial.js'
import { inTree } from './tree.js'

/**
 * The replica side of the S-phase: batches are stored without checks on
 * their thunks' content, in group commits, acked once durable; missing ones
 * are fetched from any voter (gap fill).
 */

/**
 * Stores a batch from its coordinator, a gap fill or a decided epoch change
 * (`from` undefined) without checks on its thunks' content: S-phase.
 */
export function acceptBatch (s: PeerState, batch: Batch, from: string | undefined): void {
  const record = s.epochs.get(batch.epoch)
  const stream = record?.streams.get(batch.coordinator)
  const tag = record?.tags.get(batch.coordinator)
  if (record === undefined || stream === undefined || !batch.thunks.every(t => timestampTag(t.ts) === tag)) {
    if (batch.epoch > s.current.epoch && from !== undefined) noticeEpoch(s, from)
    count(s, 'batch-refused')
    log(s, 'batch-refused', { from, coordinator: batch.coordinator, epoch: batch.epoch })
    return
  }
  if (cutOff(record, stream, batch.seq)) {
    count(s, 'batch-cut')
    return
  }
  if (batch.projected === true && projectedParts(s) === undefined && storedSet(s, record) === undefined) {
    // A full replica never stores part of a batch (it would serve it, and report it in an epoch change, as whole).
    count(s, 'projection-refused')
    return
  }
  const isWrite = from !== undefined && from === batch.coordinator && from !== s.id
  if (isWrite && record === s.current && (isSealed(s) || isInstalling(s))) {
    // A sealed voter reported what it holds; taking more could let a batch reach a majority behind the cut.
    count(s, 'write-sealed')
    return
  }
  const first = (batch.thunks[0] as Thunk).ts
  if (record === s.current && batch.coordinator !== s.id) observeTimestamp(s, (batch.thunks[batch.thunks.length - 1] as Thunk).ts)
  if (batch.seq < stream.evalNext || stream.held.has(batch.seq)) {
    // Already durable here: the coordinator missed our ack.
    if (roleOf(s) === 'voter' && isWrite && record === s.current) send(s, batch.coordinator, { t: 'ack', epoch: batch.epoch, seqs: [batch.seq], wm: watermarkEntries(s) })
    return
  }
  if (stream.receiving.has(batch.seq)) return
  if (first < s.frontier) {
    // A correct coordinator never writes below a watermark it promised; keep going, loudly.
    count(s, 'late-batch')
    log(s, 'late-batch', { ts: first, frontier: s.frontier })
  }
  stream.receiving.add(batch.seq)
  s.persistQueue.push(batch)
  count(s, 'batches-received')
  count(s, 'thunks-received', batch.thunks.length)
  startWrite(s)
}

/** Group commit: one strict store batch for everything received since the last one was handed to the store. */
export function startWrite (s: PeerState): void {
  if (s.writing || s.phase === 'closed') return
  // The writer is free: this voter's open thunks become a batch and go with this commit, unless its
  // last batch is still being signed (it comes with the next commit, and the open thunks after it: group commit, in seq order).
  if (s.signing.size === 0) sealOpen(s)
  if (s.persistQueue.length === 0) return
  const batches = s.persistQueue
  s.persistQueue = []
  s.writing = true
  // Settlements are written before this (one store queue): once it is durable, so are they.
  emit(s, { t: 'persist', batch: { batches, durability: 'strict' }, done: { t: 'batches-persisted', batches, frontier: s.frontier } })
}

/** A group commit is durable: hold its batches, count own ones as acked here, ack the others' (unless sealed). */
export function onBatchesPersisted (s: PeerState, persisted: readonly Batch[]): void {
  s.writing = false
  if (s.phase === 'closed') return
  const acks = new Map<string, number[]>()
  // A sealed voter acks nothing more of its epoch: its report to the proposer must stay true.
  const acking = roleOf(s) === 'voter' && !isSealed(s) && !isInstalling(s)
  const current = s.current
  const fed: Batch[] = []
  for (const batch of persisted) {
    const record = s.epochs.get(batch.epoch)
    const stream = record?.streams.get(batch.coordinator)
    if (record === undefined || stream === undefined) continue
    stream.receiving.delete(batch.seq)
    stream.damaged?.delete(batch.seq)
    if (batch.seq < stream.evalNext) continue
    if (cutOff(record, stream, batch.seq)) continue
    stream.held.set(batch.seq, batch)
    advanceHave(stream)
    if (record !== current) continue
    if (acking) fed.push(batch)
    if (batch.coordinator === s.id) {
      noteSealed(s, batch)
      const e = current.coordinator.inflight.get(batch.seq)
      if (e !== undefined) {
        e.acks.add(s.id)
        e.sentAt = s.now
        if (isDurable(s, current, e)) current.coordinator.inflight.delete(batch.seq)
      }
      if (!isSealed(s)) current.coordinator.outbox.push(batch)
    } else if (acking) {
      let list = acks.get(batch.coordinator)
      if (list === undefined) { list = []; acks.set(batch.coordinator, list) }
      list.push(batch.seq)
    }
  }
  noteFeedBatches(s, fed)
  if (acks.size > 0) {
    const wm = watermarkEntries(s)
    for (const [c, seqs] of acks) send(s, c, { t: 'ack', epoch: s.current.epoch, seqs, wm })
  }
  if (s.current.coordinator.outbox.length > 0) scheduleFlush(s)
  kickEvaluator(s)
  startWrite(s)
}

/** Asks for batches this replica knows it lacks: the coordinator first, then every other voter in turn. */
export function askForGaps (s: PeerState): void {
  // A replica fetching a snapshot goes on from the snapshot's cursor: batches below it are not needed,
  // and the voters collected most of them (each request would come back `gone`).
  if (s.history.fetch !== undefined) return
  const now = s.now
  for (const record of s.epochs.values()) {
    for (const [c, stream] of record.streams) {
      let need = record.floor !== undefined ? (stream.end ?? 0) : (record.wm.get(c)?.count ?? 0)
      // A batch whose record was damaged is needed again whatever the watermark says (until the cut drops it).
      for (const seq of stream.damaged ?? []) {
        // Not needed any more once the cut dropped it or evaluation passed it (a snapshot moved the cursor on).
        if (cutOff(record, stream, seq) || seq < stream.evalNext) stream.damaged?.delete(seq)
        else need = Math.max(need, seq)
      }
      if (stream.have >= need || now - stream.gapAskedAt < s.options.gapRetryMs) continue
      let from = stream.have + 1
      while (from <= need && (stream.held.has(from) || stream.receiving.has(from) || passes(stream, from))) from++
      if (from > need) continue
      const to = Math.min(need, from + C.DEFAULT_GAP_BATCH - 1)
      stream.gapAskedAt = now
      // Ask the coordinator first, then every other voter (of that epoch, then of the current one) in turn; in the
      // dissemination tree, the parent first (it holds what it passed on; its answer is checked as a forwarded batch is).
      const parent = s.tree.parent?.id
      const first = parent !== undefined && !s.current.voters.includes(parent) && inTree(s) ? [parent] : []
      const candidates = [...first, ...gapSources(s, record, c, [...new Set([c, ...record.voters, ...s.current.voters])].filter(v => v !== s.id && v !== parent))]
      if (candidates.length === 0) continue
      const target = candidates[stream.gapTarget++ % candidates.length] as string
      count(s, 'gap-req')
      const h = storedParts(s, record) ?? projectedParts(s)
      send(s, target, { t: 'gap-req', coordinator: c, epoch: record.epoch, from, to, ...(h === undefined ? {} : { h: [...h].sort((a, b) => a - b) }) })
    }
  }
}

/** Answers a gap request from the store (an effect; the batches come back as `batches-read`). */
export function serveGap (s: PeerState, to: string, coordinator: string, epoch: number, from: number, upTo: number, h: readonly number[] | undefined): void {
  const last = Math.min(upTo, from + C.DEFAULT_GAP_BATCH - 1)
  // Projections are cut from what this voter holds: whole batches, or (partial replication) its set's parts when those cover the asker's.
  if (h !== undefined && (s.parts === undefined || projectedParts(s) !== undefined)) return
  emit(s, { t: 'read-batches', replyTo: to, coordinator, epoch, from, last, ...(h === undefined ? {} : { h }) })
}

export function onBatchesRead (s: PeerState, to: string, batches: readonly Batch[], damaged: readonly number[], asked: { readonly coordinator: string, readonly epoch: number, readonly from: number }, h?: readonly number[]): void {
  if (h !== undefined) {
    // An observer of some partitions gets their projections, and a span over the seqs read here (those without one held nothing for it).
    // A placed voter asks with its set's partitions only when it stores that set's parts (partial.ts): it gets what touches them.
    const cut = projectGap(s, batches.filter(b => !damaged.includes(b.seq)), new Set(h), asked, s.parts?.placement.setOf(to))
    for (const m of spannedChunks(writeChunks(cut.batches), cut.span)) send(s, to, { t: 'gap-rep', ...m })
  } else {
    // Whole batches only: a voter that stores parts (partial.ts) holds others' batches in part.
    for (const chunk of writeChunks(batches.filter(b => b.projected !== true))) send(s, to, { t: 'gap-rep', batches: chunk })
  }
  // Damaged here is not gone: the asker asks another voter.
  if (damaged.length > 0) {
    noteDamagedBatches(s, asked.coordinator, asked.epoch, damaged)
    startWrite(s)
    if (damaged.includes(asked.from)) return
  }
  // The start of the range is not here although this replica evaluated past it: it was collected. Say so,
  // so the asker takes a snapshot instead of asking for ever.
  const first = batches[0]
  if (first !== undefined && first.seq <= asked.from) return
  const stream = s.epochs.get(asked.epoch)?.streams.get(asked.coordinator)
  if (asked.epoch < s.evaluatingEpoch || (asked.epoch === s.evaluatingEpoch && stream !== undefined && stream.evalNext > asked.from)) send(s, to, { t: 'gap-rep', batches: [], gone: asked })
}
