import * as C from '../constants.js'
import { timestampTag } from '../timestamp.js'
import type { Thunk } from '../types.js'
import { kickEvaluator } from './evaluator.js'
import { observeTimestamp, scheduleFlush, watermarkEntries } from './promise.js'
import { noticeEpoch } from './reconfig/epoch-news.js'
import { count, emit, log, send } from './emit.js'
import { advanceHave, cutOff, isInstalling, isSealed, roleOf, type PeerState } from './state.js'

/**
 * The replica side of the S-phase: thunks are stored without checks on their
 * content, in group commits, acked once durable; missing ones are fetched
 * from any voter (gap fill).
 */

/**
 * Stores a thunk from its coordinator, a gap fill or a decided epoch
 * change (`from` undefined) without checks on its content: S-phase.
 */
export function acceptThunk (s: PeerState, thunk: Thunk, from: string | undefined): void {
  const record = s.epochs.get(thunk.epoch)
  const stream = record?.streams.get(thunk.coordinator)
  if (record === undefined || stream === undefined || record.tags.get(thunk.coordinator) !== timestampTag(thunk.ts)) {
    if (thunk.epoch > s.current.epoch && from !== undefined) noticeEpoch(s, from)
    count(s, 'thunk-refused')
    log(s, 'thunk-refused', { from, coordinator: thunk.coordinator, epoch: thunk.epoch })
    return
  }
  if (cutOff(record, stream, thunk.seq)) {
    count(s, 'thunk-cut')
    return
  }
  const isWrite = from !== undefined && from === thunk.coordinator && from !== s.id
  if (isWrite && record === s.current && (isSealed(s) || isInstalling(s))) {
    // A sealed voter reported what it holds; taking more could let a thunk reach a majority behind the cut.
    count(s, 'write-sealed')
    return
  }
  if (record === s.current && thunk.coordinator !== s.id) observeTimestamp(s, thunk.ts)
  if (thunk.seq < stream.evalNext || stream.held.has(thunk.seq)) {
    // Already durable here: the coordinator missed our ack.
    if (roleOf(s) === 'voter' && isWrite && record === s.current) send(s, thunk.coordinator, { t: 'ack', epoch: thunk.epoch, seqs: [thunk.seq], wm: watermarkEntries(s) })
    return
  }
  if (stream.receiving.has(thunk.seq)) return
  if (thunk.ts < s.frontier) {
    // A correct coordinator never writes below a watermark it promised; keep going, loudly.
    count(s, 'late-thunk')
    log(s, 'late-thunk', { ts: thunk.ts, frontier: s.frontier })
  }
  stream.receiving.add(thunk.seq)
  s.persistQueue.push(thunk)
  startWrite(s)
}

/** Group commit: one strict store batch for everything received since the last one was handed to the store. */
function startWrite (s: PeerState): void {
  if (s.writing || s.persistQueue.length === 0 || s.phase === 'closed') return
  const thunks = s.persistQueue
  s.persistQueue = []
  s.writing = true
  emit(s, { t: 'persist', batch: { thunks, durability: 'strict' }, done: { t: 'thunks-persisted', thunks } })
}

/** A group commit is durable: hold its thunks, count own ones as acked here, ack the others' (unless sealed). */
export function onThunksPersisted (s: PeerState, batch: readonly Thunk[]): void {
  s.writing = false
  if (s.phase === 'closed') return
  const acks = new Map<string, number[]>()
  // A sealed voter acks nothing more of its epoch: its report to the proposer must stay true.
  const acking = roleOf(s) === 'voter' && !isSealed(s) && !isInstalling(s)
  const current = s.current
  for (const thunk of batch) {
    const record = s.epochs.get(thunk.epoch)
    const stream = record?.streams.get(thunk.coordinator)
    if (record === undefined || stream === undefined) continue
    stream.receiving.delete(thunk.seq)
    if (thunk.seq < stream.evalNext) continue
    if (cutOff(record, stream, thunk.seq)) continue
    stream.held.set(thunk.seq, thunk)
    advanceHave(stream)
    if (record !== current) continue
    if (thunk.coordinator === s.id) {
      const e = current.coordinator.inflight.get(thunk.seq)
      if (e !== undefined) {
        e.acks.add(s.id)
        e.sentAt = s.now
        if (e.acks.size >= current.majority) current.coordinator.inflight.delete(thunk.seq)
      }
      if (!isSealed(s)) current.coordinator.outbox.push(thunk)
    } else if (acking) {
      let list = acks.get(thunk.coordinator)
      if (list === undefined) { list = []; acks.set(thunk.coordinator, list) }
      list.push(thunk.seq)
    }
  }
  if (acks.size > 0) {
    const wm = watermarkEntries(s)
    for (const [c, seqs] of acks) send(s, c, { t: 'ack', epoch: s.current.epoch, seqs, wm })
  }
  if (s.current.coordinator.outbox.length > 0) scheduleFlush(s)
  kickEvaluator(s)
  startWrite(s)
}

/** Asks for thunks this replica knows it lacks: the coordinator first, then every other voter in turn. */
export function askForGaps (s: PeerState): void {
  const now = s.now
  for (const record of s.epochs.values()) {
    for (const [c, stream] of record.streams) {
      const need = record.floor !== undefined ? (stream.end ?? 0) : (record.wm.get(c)?.count ?? 0)
      if (stream.have >= need || now - stream.gapAskedAt < s.options.gapRetryMs) continue
      let from = stream.have + 1
      while (from <= need && (stream.held.has(from) || stream.receiving.has(from) || stream.skip?.has(from) === true)) from++
      if (from > need) continue
      const to = Math.min(need, from + C.DEFAULT_GAP_BATCH - 1)
      stream.gapAskedAt = now
      // Ask the coordinator first, then every other voter (of that epoch, then of the current one) in turn.
      const candidates = [...new Set([c, ...record.voters, ...s.current.voters])].filter(v => v !== s.id)
      if (candidates.length === 0) continue
      const target = candidates[stream.gapTarget++ % candidates.length] as string
      count(s, 'gap-req')
      send(s, target, { t: 'gap-req', coordinator: c, epoch: record.epoch, from, to })
    }
  }
}

/** Answers a gap request from the store (an effect; the thunks come back as `thunks-read`). */
export function serveGap (s: PeerState, to: string, coordinator: string, epoch: number, from: number, upTo: number): void {
  const last = Math.min(upTo, from + C.DEFAULT_GAP_BATCH - 1)
  emit(s, { t: 'read-thunks', replyTo: to, coordinator, epoch, from, last })
}

export function onThunksRead (s: PeerState, to: string, thunks: readonly Thunk[]): void {
  if (thunks.length > 0) send(s, to, { t: 'gap-rep', thunks })
}
