import { projectBatch, thunkParts, type Placement } from '../partition.js'
import { hash64 } from '../hash.js'
import type { KeyRange } from '../key-range.js'
import { suspects } from './reconfig/failure-detector.js'
import type { Span } from '../messages.js'
import type { Batch, WatermarkEntry } from '../types.js'
import { writeChunks } from './batcher.js'
import { advanceHave, cutOff } from './cut.js'
import { count, send } from './emit.js'
import type { PartState } from './part-state.js'
import type { EpochRecord, Inflight, PeerState, Stream } from './state.js'

/**
 * Partial replication between voters (docs/design/partitions.md, stage 2b;
 * on unless a group's `partitions.partial` is false). In a partially replicated epoch a voter placed on a
 * replica set receives, stores and acks only the thunks that touch its set's
 * partitions (those it evaluates or forwards reads for); a voter placed on
 * none (one added after the genesis) and the coordinator itself keep whole
 * batches. A batch is durable once a majority of the storers of every set it
 * touches acked it, and an epoch change hears a majority of each set's
 * storers as well as a majority of the voters (proposer.ts), so every part
 * of every durable batch is reported.
 *
 * A placed voter learns which of a coordinator's batches held nothing for
 * its set from a span on the coordinator's writes (the seqs since the last
 * one it sent the set) and from `tails` on the coordinator's watermark entry
 * (past the set's last batch, up to the entry's count); a gap answer says
 * the same for the seqs it covers.
 *
 * An epoch replicates whole when the group turns it off, has one set,
 * or one of its sets has no placed voter left among the epoch's voters.
 */

const partialOf = new WeakMap<EpochRecord, { readonly on: boolean, readonly storers: ReadonlyArray<readonly string[]> }>()

function shape (s: PeerState, record: EpochRecord): { readonly on: boolean, readonly storers: ReadonlyArray<readonly string[]> } {
  const known = partialOf.get(record)
  if (known !== undefined) return known
  const p = s.parts
  let out: { on: boolean, storers: Array<readonly string[]> } = { on: false, storers: [] }
  if (p !== undefined && p.spec.partial !== false && p.placement.sets.length > 1) {
    const on = p.placement.sets.every(set => set.some(v => record.voters.includes(v)))
    out = { on, storers: on ? storersOf(p.placement, record.voters) : [] }
  }
  partialOf.set(record, out)
  return out
}

/** Whether epoch `record` replicates partially. */
export const partialEpoch = (s: PeerState, record: EpochRecord): boolean => shape(s, record).on

/** The set whose parts this peer stores in `record` (a placed voter of a partially replicated epoch), else undefined: it stores whole batches. */
export function storedSet (s: PeerState, record: EpochRecord): number | undefined {
  if (!partialEpoch(s, record) || !record.voters.includes(s.id)) return undefined
  return (s.parts as PartState).placement.setOf(s.id)
}

/** The partitions this peer stores in `record`, when it stores part of each batch. */
export function storedParts (s: PeerState, record: EpochRecord): ReadonlySet<number> | undefined {
  const j = storedSet(s, record)
  return j === undefined ? undefined : (s.parts as PartState).placement.setParts[j]
}

const takersOf = new WeakMap<Batch, ReadonlySet<number>>()

/** The replica sets a batch touches. */
export function takers (p: PartState, batch: Batch): ReadonlySet<number> {
  const known = takersOf.get(batch)
  if (known !== undefined) return known
  const out = new Set<number>()
  for (const t of batch.thunks) {
    const parts = thunkParts(t, p.spec)
    for (const q of parts.active) out.add(p.placement.setOfPartition(q))
    for (const q of parts.reads) out.add(p.placement.setOfPartition(q))
  }
  takersOf.set(batch, out)
  return out
}

/** Whether an in-flight batch is durable: on a majority of the voters, or in a partially replicated epoch on a majority of the storers of each set it touches. */
export function isDurable (s: PeerState, record: EpochRecord, e: Inflight): boolean {
  const { on, storers } = shape(s, record)
  if (!on) return e.acks.size >= record.majority
  for (const j of takers(s.parts as PartState, e.batch)) {
    const of = storers[j] as readonly string[]
    let acked = 0
    for (const v of of) if (e.acks.has(v)) acked++
    if (acked < Math.floor(of.length / 2) + 1) return false
  }
  return true
}

/** Whether `voter` stores any part of `batch` in `record`. */
function stores (s: PeerState, batch: Batch, voter: string): boolean {
  const j = (s.parts as PartState).placement.setOf(voter)
  return j === undefined || takers(s.parts as PartState, batch).has(j)
}

/** What `voter` is sent of `batch` in a partially replicated epoch: the batch whole, its set's projection, or nothing. */
export function copyFor (s: PeerState, batch: Batch, voter: string): Batch | undefined {
  const p = s.parts as PartState
  const j = p.placement.setOf(voter)
  if (j === undefined) return batch
  if (!stores(s, batch, voter)) return undefined
  return projectBatch(batch, p.placement.setParts[j] as ReadonlySet<number>, p.spec, j)
}

/** Each set's storers among an epoch's voters: those placed on it and those placed on none. */
export function storersOf (placement: Placement, voters: readonly string[]): string[][] {
  return placement.sets.map((_, j) => voters.filter(v => placement.setOf(v) === undefined || placement.setOf(v) === j))
}

/** Whether `promised` holds a majority of each set's storers. */
export function coveredBy (storers: ReadonlyArray<readonly string[]>, promised: ReadonlySet<string> | ReadonlyMap<string, unknown>): boolean {
  for (const of of storers) {
    let n = 0
    for (const v of of) if (promised.has(v)) n++
    if (n < Math.floor(of.length / 2) + 1) return false
  }
  return true
}

/** Whether a promise quorum holds a majority of every set's storers (always, in an epoch replicated whole). */
export const coversSets = (s: PeerState, record: EpochRecord, promised: ReadonlySet<string> | ReadonlyMap<string, unknown>): boolean => coveredBy(shape(s, record).storers, promised)

/** A coordinator's own batch is persisted (in seq order): which sets it touches is logged. */
export function noteSealed (s: PeerState, batch: Batch): void {
  if (!partialEpoch(s, s.current)) return
  const p = s.parts as PartState
  let log = p.setLog
  if (log?.epoch !== batch.epoch) {
    const k = p.placement.sets.length
    log = { epoch: batch.epoch, from: batch.seq, seqs: Array.from({ length: k }, () => []), said: Array.from({ length: k }, () => batch.seq - 1) }
    p.setLog = log
  }
  for (const j of takers(p, batch)) (log.seqs[j] as number[]).push(batch.seq)
}

/** The `tails` of this voter's entry with `count` batches durable: per set, its last batch at or below `count` (undefined when not known). */
export function tailsFor (s: PeerState, epoch: number, count: number): number[] | undefined {
  const log = s.parts?.setLog
  if (log?.epoch !== epoch || !partialEpoch(s, s.current)) return undefined
  const out: number[] = []
  for (const seqs of log.seqs) {
    while (seqs.length > 1 && (seqs[1] as number) <= count) seqs.shift()
    const first = seqs[0]
    if (first !== undefined && first <= count) out.push(first)
    else if (log.from <= 1) out.push(0)
    else return undefined
  }
  return out
}

/**
 * A coordinator's flush in a partially replicated epoch: whole batches to the
 * voters placed on no set, and to each set's voters the projections onto it,
 * each write with a span over the seqs since the last one the set was told of.
 */
export function sendWrites (s: PeerState, batches: readonly Batch[], wm: readonly WatermarkEntry[]): void {
  const record = s.current
  const p = s.parts as PartState
  const log = p.setLog
  const whole = record.voters.filter(v => v !== s.id && p.placement.setOf(v) === undefined)
  for (const chunk of writeChunks(batches)) for (const v of whole) send(s, v, { t: 'write', batches: chunk, wm })
  p.placement.sets.forEach((set, j) => {
    const to = set.filter(v => v !== s.id && record.voters.includes(v))
    if (to.length === 0) return
    const mine: Batch[] = []
    for (const b of batches) {
      const copy = copyFor(s, b, set[0] as string)
      if (copy !== undefined) mine.push(copy)
    }
    for (const chunk of writeChunks(mine)) {
      const last = (chunk.at(-1) as Batch).seq
      const said = log?.epoch === record.epoch ? log.said[j] : undefined
      const span: Span | undefined = said !== undefined && said + 1 <= last ? { epoch: record.epoch, from: said + 1, to: last } : undefined
      if (log !== undefined && said !== undefined) log.said[j] = last
      for (const v of to) send(s, v, { t: 'write', batches: chunk, wm, ...(span === undefined ? {} : { span }) })
    }
  })
}

/**
 * The order in which a placed voter asks for a gap of `record`: the
 * coordinator (it keeps its batches whole), the voters of its own set and
 * those placed on none, then the others (one can answer for a batch that
 * touched its set only, which it holds whole).
 */
export function gapSources (s: PeerState, record: EpochRecord, coordinator: string, candidates: readonly string[]): readonly string[] {
  const j = storedSet(s, record)
  if (j === undefined) return candidates
  const pl = (s.parts as PartState).placement
  const near = (v: string): boolean => v === coordinator || pl.setOf(v) === undefined || pl.setOf(v) === j
  return [...candidates.filter(near), ...candidates.filter(v => !near(v))]
}

/** Seqs `from..to` of `stream` held nothing for this replica: passed without a batch (unless held or on their way). */
export function voidRange (record: EpochRecord, stream: Stream, from: number, to: number, carried?: ReadonlySet<number>): void {
  for (let seq = Math.max(from, stream.have + 1); seq <= to; seq++) {
    if (carried?.has(seq) === true || stream.held.has(seq) || stream.receiving.has(seq) || cutOff(record, stream, seq)) continue
    stream.voids ??= new Set()
    stream.voids.add(seq)
  }
  advanceHave(stream)
}

/** Another voter's entry: a placed voter of a partially replicated epoch takes its batches after its set's tail as holding nothing for it. */
export function takeTails (s: PeerState, e: WatermarkEntry): void {
  const tail = e.tails?.[storedSet(s, s.current) ?? -1]
  if (tail === undefined || tail >= e.count) return
  const stream = s.current.streams.get(e.voter)
  if (stream === undefined) return
  if (stream.have < e.count) {
    voidRange(s.current, stream, tail + 1, e.count)
    count(s, 'tails-taken')
  }
}

/**
 * Where a voter hands a call whose thunk touches one replica set only, not
 * its own, in a partially replicated epoch: a voter of that set it does not
 * suspect (by the call's id, so calls spread over the set). Its batch then
 * stays within the set, and its coordinator evaluates it and answers, where
 * minting it here would send the batch to the other set's storers and wait
 * for one of them for the result. Undefined: mint it here.
 */
export function setHome (s: PeerState, keys: { readonly reads: readonly string[], readonly writes: readonly string[], readonly ranges?: readonly KeyRange[] }, clientTxnId: string): string | undefined {
  const mine = storedSet(s, s.current)
  if (mine === undefined) return undefined
  const p = s.parts as PartState
  const parts = thunkParts(keys, p.spec)
  const sets = new Set([...parts.active, ...parts.reads].map(q => p.placement.setOfPartition(q)))
  if (sets.size !== 1 || sets.has(mine)) return undefined
  const j = sets.values().next().value as number
  const live = (p.placement.sets[j] as readonly string[]).filter(v => s.current.voters.includes(v) && !suspects(s, v, s.now))
  if (live.length === 0) return undefined
  return live[Number.parseInt(hash64(clientTxnId).slice(0, 8), 16) % live.length]
}
