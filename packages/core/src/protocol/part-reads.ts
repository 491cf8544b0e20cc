import { PartitionNotHeldError, PartitionRangeError, errorFromInfo } from '../errors.js'
import { partitionOf, partitionOfRange } from '../partition.js'
import type { Timestamp } from '../timestamp.js'
import type { ReadResult } from '../types.js'
import type { Effect } from './effects.js'
import { emit, send } from './emit.js'
import type { RangeRead, ReadOp } from './read-state.js'
import type { RemotePart, SplitRead } from './part-state.js'
import type { PeerState } from './state.js'

/**
 * Reads in a partitioned group (DESIGN.md §13). A replica answers from its
 * store what it holds; each other partition's keys are read at the same
 * timestamp by one of that partition's voters (a `read` with `at`: already
 * confirmed, so that replica only waits for its frontier to pass it), and
 * the parts are put together. Every part is exactly the state at one
 * timestamp, so the whole is too.
 */

const splits = (s: PeerState): Map<number, SplitRead> => (s.parts as NonNullable<PeerState['parts']>).reads

/**
 * The store read of `op` at `at`, or (a partitioned replica missing some of
 * its keys) the reads of its parts. Undefined: nothing to split, read it
 * here; an error: the read cannot be answered (a range over several scopes,
 * or one with `at` fixed that this replica does not hold).
 */
export function splitRead (s: PeerState, op: ReadOp, at: Timestamp, fixed: boolean): 'local' | 'split' | Error {
  const p = s.parts
  if (p === undefined) return 'local'
  const mine: string[] = []
  const others = new Map<number, { keys: string[], range: RangeRead | undefined }>()
  const part = (q: number): { keys: string[], range: RangeRead | undefined } => {
    let x = others.get(q)
    if (x === undefined) { x = { keys: [], range: undefined }; others.set(q, x) }
    return x
  }
  for (const k of op.keys) {
    const q = partitionOf(k, p.spec)
    if (p.have.has(q)) mine.push(k)
    else part(q).keys.push(k)
  }
  let localRange = false
  if (op.range !== undefined) {
    const q = partitionOfRange(op.range.range, p.spec)
    if (q === undefined) return new PartitionRangeError('a read\'s key range spans more than one scope of the group\'s partitions; read each scope\'s range')
    if (p.have.has(q)) localRange = true
    else part(q).range = op.range
  }
  if (others.size === 0) return 'local'
  if (fixed) return new PartitionNotHeldError(`${s.id} does not hold every partition this read touches`)
  const split: SplitRead = { at, parts: new Map(), local: mine.length === 0 && !localRange, values: {}, entries: undefined }
  splits(s).set(op.id, split)
  for (const [q, x] of others) {
    // Unique per split: a read split again (at the frontier, after its first timestamp was refused as too old)
    // must not take the answer to an earlier split, read at another timestamp.
    const reqId = `${s.id}:pr:${s.startedAt}:${op.id}:${q}:${++s.nextReadId}`
    const remote: RemotePart = { p: q, keys: x.keys, range: x.range, to: '', tries: 0, sentAt: s.now }
    split.parts.set(reqId, remote)
    s.readIds.set(reqId, op.id)
    sendPart(s, reqId, remote, at)
  }
  if (!split.local) {
    const e: Effect = { t: 'read-values', read: op.id, keys: mine, ...(localRange && op.range !== undefined ? { range: op.range } : {}), at }
    emit(s, e)
  }
  return 'split'
}

function sendPart (s: PeerState, reqId: string, part: RemotePart, at: Timestamp): void {
  const placed = s.parts?.placement
  const replicas = (placed?.replicas[part.p] ?? []).filter(v => v !== s.id)
  if (replicas.length === 0) return
  part.to = replicas[part.tries % replicas.length] as string
  part.tries++
  part.sentAt = s.now
  send(s, part.to, { t: 'read', reqId, keys: part.keys, ...(part.range === undefined ? {} : { range: part.range }), consistency: 'strict', replyTo: s.id, at })
}

/** The local part of a split read came back: the whole result once every part is in (else undefined). */
export function localPartRead (s: PeerState, id: number, result: ReadResult): ReadResult | undefined | 'not-split' {
  const split = s.parts?.reads.get(id)
  if (split === undefined) return 'not-split'
  split.local = true
  merge(split, result)
  return finished(s, id, split)
}

/** A remote part came back (or was refused): the whole result once every part is in; an error ends the read. */
export function remotePartRead (s: PeerState, from: string, reqId: string, result: ReadResult | undefined, error: { readonly name: string, readonly message: string } | undefined): { id: number, result?: ReadResult, error?: Error } | undefined {
  const id = s.readIds.get(reqId)
  if (id === undefined) return undefined
  const split = s.parts?.reads.get(id)
  const part = split?.parts.get(reqId)
  if (split === undefined || part === undefined || part.to !== from || (result !== undefined && result.ts !== split.at)) return undefined
  if (result === undefined) {
    // That replica does not hold the partition (yet), or is going away: ask the next, a few times.
    if (error?.name === 'PartitionNotHeldError' && part.tries < 6) { sendPart(s, reqId, part, split.at); return undefined }
    dropSplit(s, id)
    return { id, error: errorFromInfo(error ?? { name: 'QuorumUnavailableError', message: 'no answer' }) }
  }
  s.readIds.delete(reqId)
  split.parts.delete(reqId)
  merge(split, result)
  const whole = finished(s, id, split)
  return whole === undefined ? undefined : { id, result: whole }
}

function merge (split: SplitRead, result: ReadResult): void {
  Object.assign(split.values, result.values)
  if (result.entries !== undefined) split.entries = [...(split.entries ?? []), ...result.entries]
}

function finished (s: PeerState, id: number, split: SplitRead): ReadResult | undefined {
  if (!split.local || split.parts.size > 0) return undefined
  dropSplit(s, id)
  return { ts: split.at, values: split.values, ...(split.entries === undefined ? {} : { entries: split.entries }) }
}

export function dropSplit (s: PeerState, id: number): void {
  const split = s.parts?.reads.get(id)
  if (split === undefined) return
  for (const reqId of split.parts.keys()) s.readIds.delete(reqId)
  s.parts?.reads.delete(id)
}

/** Parts unanswered for a while are asked of the partition's next replica. */
export function retryParts (s: PeerState): void {
  const every = s.options.writeRetryMs * 5
  for (const split of s.parts?.reads.values() ?? []) {
    for (const [reqId, part] of split.parts) if (s.now - part.sentAt >= every) sendPart(s, reqId, part, split.at)
  }
}
