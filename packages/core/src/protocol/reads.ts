import { AbortError, PeerClosedError, QuorumUnavailableError, errorFromInfo } from '../errors.js'
import { projectedParts } from './partitions.js'
import type { Timestamp } from '../timestamp.js'
import type { ReadConsistency, ReadResult } from '../types.js'
import type { Value } from '../value.js'
import { confirmRead } from './confirm.js'
import { homeVoter } from './requests.js'
import { emit, errorInfo, send, settle } from './emit.js'
import { roleOf, type PeerState, type ReadOp, type ReadReply } from './state.js'
import type { RangeRead } from './read-state.js'
import type { Effect } from './effects.js'
import { dropSplit, localPartRead, remotePartRead, retryParts, splitRead } from './part-reads.js'

/**
 * Read-only transactions. Snapshot: at this replica's frontier, at once.
 * Strict: at a voter-minted timestamp (confirmed, see confirm.ts), once the
 * frontier has passed it. The store read itself is an effect; its result
 * comes back as `values-read`.
 */

/** The store read of `op` at `at`. */
const readAt = (op: ReadOp, at: Timestamp): Effect => ({ t: 'read-values', read: op.id, keys: op.keys, ...(op.range === undefined ? {} : { range: op.range }), at })

export function startRead (s: PeerState, reply: ReadReply, keys: readonly string[], consistency: ReadConsistency, timeoutMs?: number, range?: RangeRead, at?: Timestamp): void {
  if (s.phase === 'failed' || s.phase === 'closed') {
    answer(s, reply, undefined, new PeerClosedError(`peer ${s.id} ${s.phase === 'failed' ? `failed: ${s.failure ?? ''}` : 'closed'}`))
    return
  }
  const id = ++s.nextReadId
  const op: ReadOp = { id, keys, ...(range === undefined ? {} : { range }), reply, deadline: s.now + (timeoutMs ?? s.options.callTimeoutMs), phase: 'waiting', ts: at, to: '', sentAt: s.now, rereads: 0, ...(at === undefined ? {} : { fixed: true }) }
  s.reads.set(id, op)
  if (at !== undefined) {
    // Another replica's part of a read it confirmed at `at`: wait for the frontier to pass it.
    serveReads(s)
    return
  }
  if (consistency === 'snapshot') {
    // Healing, it waits for the healed state (serveReads).
    if (s.history.heal !== undefined) {
      op.phase = 'held'
      return
    }
    op.ts = s.frontier
    op.phase = 'reading'
    readOp(s, op, s.frontier)
    return
  }
  getTimestamp(s, op)
}

/** How often a read the store refused as too old is tried again at the frontier before it fails with that error. */
const MAX_REREADS = 3

/** A voter mints the read's timestamp and confirms it; an observer asks its home voter for one. */
function getTimestamp (s: PeerState, op: ReadOp): void {
  if (roleOf(s) === 'voter') {
    op.phase = 'confirming'
    op.ts = s.minter.mint(s.now)
    readsConfirmed(s, confirmRead(s, op.id))
    return
  }
  op.phase = 'requesting'
  s.readIds.set(timestampRequestId(s, op), op.id)
  sendTimestampRequest(s, op)
}

const timestampRequestId = (s: PeerState, op: ReadOp): string => `${s.id}:ts:${s.startedAt}:${op.id}`

function sendTimestampRequest (s: PeerState, op: ReadOp): void {
  op.to = homeVoter(s, op.to)
  op.sentAt = s.now
  send(s, op.to, { t: 'ts-req', reqId: timestampRequestId(s, op) })
}

/** A voter's answer to this observer's timestamp request. */
export function onTimestamp (s: PeerState, from: string, reqId: string, ts: Timestamp): void {
  const id = s.readIds.get(reqId)
  if (id === undefined || !s.current.voters.includes(from)) return
  s.readIds.delete(reqId)
  const op = s.reads.get(id)
  if (op?.phase === 'requesting') timestampKnown(s, op, ts)
}

/** Reads whose confirmation round completed: their timestamps count. */
export function readsConfirmed (s: PeerState, ids: readonly number[]): void {
  for (const id of ids) {
    const op = s.reads.get(id)
    if (op?.phase === 'confirming' && op.ts !== undefined) timestampKnown(s, op, op.ts)
  }
}

/** Reads whose confirmation failed (the epoch changed): they get a timestamp again. */
export function readsUnconfirmed (s: PeerState, ids: readonly number[]): void {
  for (const id of ids) {
    const op = s.reads.get(id)
    if (op?.phase === 'confirming') getTimestamp(s, op)
  }
}

function timestampKnown (s: PeerState, op: ReadOp, ts: Timestamp): void {
  if (op.reply.kind === 'timestamp') {
    s.reads.delete(op.id)
    send(s, op.reply.to, { t: 'ts-rep', reqId: op.reply.reqId, ts })
    return
  }
  op.ts = ts
  op.phase = 'waiting'
  // An observer of some partitions hears the voters' entries only when it is owed them (feeds.ts): it asks.
  if (projectedParts(s) !== undefined && ts >= s.frontier) for (const v of s.current.voters) send(s, v, { t: 'wm-want', ts })
  serveReads(s)
}

/** Starts the store reads of the strict reads whose timestamp the frontier has passed. */
export function serveReads (s: PeerState): void {
  // A replica healing serves nothing from its wrong state: its reads wait for the snapshot (or their deadline).
  if (s.history.heal !== undefined) return
  for (const op of s.reads.values()) {
    if (op.phase === 'held') {
      op.phase = 'reading'
      op.ts = s.frontier
      readOp(s, op, op.ts)
      continue
    }
    if (op.phase !== 'waiting' || op.ts === undefined || op.ts >= s.frontier) continue
    op.phase = 'reading'
    readOp(s, op, op.ts)
  }
}

/** Reads `op` at `at` from the store, or (partitioned) its parts from the replicas holding them. */
function readOp (s: PeerState, op: ReadOp, at: Timestamp): void {
  const how = splitRead(s, op, at, op.fixed === true)
  if (how === 'local') emit(s, readAt(op, at))
  else if (how !== 'split') {
    s.reads.delete(op.id)
    answer(s, op.reply, undefined, how)
  }
}

/** A remote part of a split read came back (read-rep). */
export function onPartRead (s: PeerState, from: string, reqId: string, result: ReadResult | undefined, error: { readonly name: string, readonly message: string } | undefined): void {
  const done = remotePartRead(s, from, reqId, result, error)
  const op = done === undefined ? undefined : s.reads.get(done.id)
  if (done === undefined || op === undefined) return
  s.reads.delete(done.id)
  answer(s, op.reply, done.result, done.error)
}

export function onValuesRead (s: PeerState, id: number, result: ReadResult): void {
  const op = s.reads.get(id)
  if (op === undefined) return
  const whole = localPartRead(s, id, result)
  if (whole === undefined) return
  s.reads.delete(id)
  answer(s, op.reply, whole === 'not-split' ? result : whole, undefined)
}

export function onValuesRefused (s: PeerState, id: number, error: { readonly name: string, readonly message: string }): void {
  const op = s.reads.get(id)
  if (op === undefined) return
  dropSplit(s, id)
  if (error.name === 'SnapshotTooOldError' && op.fixed !== true && op.ts !== undefined && op.ts < s.frontier && op.rereads < MAX_REREADS) {
    // The replica moved past the read's timestamp and no longer holds the versions it needs (it installed a
    // snapshot, or GC passed it). Read at the frontier instead: it is later than the read's start, so
    // everything committed before the read is there, and everything there is already evaluated: a point a
    // strict read may take as well.
    op.rereads++
    op.ts = s.frontier
    readOp(s, op, op.ts)
    return
  }
  s.reads.delete(id)
  answer(s, op.reply, undefined, errorFromInfo(error))
}

function answer (s: PeerState, reply: ReadReply, result: ReadResult | undefined, err: Error | undefined): void {
  if (reply.kind === 'local') settle(s, reply.call, result, err)
  else if (reply.kind === 'remote') send(s, reply.to, result !== undefined ? { t: 'read-rep', reqId: reply.reqId, result } : { t: 'read-rep', reqId: reply.reqId, error: errorInfo(err) })
}

/** Fails reads past their deadline, and asks again for timestamps a voter has not answered. */
export function tickReads (s: PeerState): void {
  const every = s.options.writeRetryMs * 5
  retryParts(s)
  for (const op of s.reads.values()) {
    if (s.now >= op.deadline) {
      dropSplit(s, op.id)
      s.reads.delete(op.id)
      s.readIds.delete(timestampRequestId(s, op))
      answer(s, op.reply, undefined, new QuorumUnavailableError('timed out waiting for the watermark'))
    } else if (op.phase === 'requesting' && s.now - op.sentAt >= every) {
      sendTimestampRequest(s, op)
    }
  }
}

/** A local read's caller gave up. */
export function abortRead (s: PeerState, call: number): boolean {
  for (const op of s.reads.values()) {
    if (op.reply.kind !== 'local' || op.reply.call !== call) continue
    dropSplit(s, op.id)
    s.reads.delete(op.id)
    s.readIds.delete(timestampRequestId(s, op))
    settle(s, call, undefined, new AbortError('aborted'))
    return true
  }
  return false
}

/** The values a store read found, as a read's result. */
export function readResult (keys: readonly string[], found: ReadonlyArray<Value | undefined>, ts: Timestamp): ReadResult {
  const values: Record<string, Value> = {}
  for (let i = 0; i < keys.length; i++) {
    const v = found[i]
    if (v !== undefined) values[keys[i] as string] = v
  }
  return { ts, values }
}
