import { evaluates, partitionOf, partitionOfRange, thunkParts, type ThunkParts } from '../partition.js'
import { AHEAD, EVAL, FORWARD } from '../settle.js'
import type { AppliedRun, ForwardedReads, RunPlan } from '../run-rules.js'
import type { Timestamp } from '../timestamp.js'
import type { Thunk, TxnResult } from '../types.js'
import type { Message } from '../messages.js'
import { count, emit, send } from './emit.js'
import type { KeyRange } from '../key-range.js'
import { resolveWaiters } from './requests.js'
import { isVoterOfKnownEpoch, type PeerState } from './state.js'
import type { PartState } from './part-state.js'

export { newPartState, type PartState } from './part-state.js'

/** Forwards and results kept to answer late askers. */
const RECENT_KEPT = 8192

/**
 * Partitioned evaluation (DESIGN.md §13). Each replica evaluates the thunks
 * that write into the partitions it holds; what such a thunk reads in other
 * partitions is forwarded, as of just before it, by those partitions'
 * replicas (Calvin's active and passive participants). A coordinator that
 * does not evaluate a thunk it minted gets its result from one that does.
 *
 * Every replica still receives every batch (replication is not partial yet),
 * so a thunk's timestamp order, the watermark and epoch changes are as in an
 * unpartitioned group.
 */

/** What this peer is to hold: its placement as a genesis voter, what it declared otherwise. */
export function roleHolding (s: PeerState): ReadonlySet<number> {
  const p = s.parts as PartState
  return p.placement.voters.includes(s.id) ? p.placement.holding(s.id) : p.declared
}

/**
 * The sources of a snapshot for this replica (a partitioned one): the
 * replicas placed on every partition it is to hold (a snapshot carries its
 * source's partitions only), voters now or not, those among `preferred`
 * (heard from lately) first. Without partitions, `preferred`.
 */
export function covering (s: PeerState, preferred: readonly string[], others: readonly string[] = preferred): readonly string[] {
  const p = s.parts
  if (p === undefined) return preferred
  const mine = roleHolding(s)
  if (mine.size === 0) return preferred
  const covers = (v: string): boolean => v !== s.id && [...mine].every(q => p.placement.holding(v).has(q))
  const first = preferred.filter(covers)
  if (first.length > 0) return first
  const then = others.filter(covers)
  if (then.length > 0) return then
  // A placed replica waits for one of its set (there always is one); any other peer (an observer following
  // partitions of several sets) takes what it can get and reads the rest from their replicas.
  return isPlaced(s) ? p.placement.voters.filter(covers) : preferred
}

/** Whether importing a snapshot of `holding` keeps every partition this replica must hold: a placed one must lose none. */
export function holdsAll (s: PeerState, holding: readonly number[] | undefined): boolean {
  if (s.parts === undefined || holding === undefined || !isPlaced(s)) return true
  return [...roleHolding(s)].every(q => holding.includes(q))
}

/** A genesis voter, placed on partitions: it serves snapshots of them even when it is not a voter now. */
export const isPlaced = (s: PeerState): boolean => s.parts?.placement.voters.includes(s.id) === true

/** A replica starting from nothing (at the genesis) has every partition it is to hold. */
export function startHolding (s: PeerState): void {
  if (s.parts !== undefined) s.parts.have = new Set(roleHolding(s))
}

/** The holding a cursor recorded (recovery, or a snapshot's source), kept to what this peer is to hold. */
export function restoreHolding (s: PeerState, holding: readonly number[] | undefined): void {
  if (s.parts === undefined) return
  const role = roleHolding(s)
  s.parts.have = new Set((holding ?? [...role]).filter(p => role.has(p)))
}

/**
 * Which partitions a replica's digests cover, as a short text (undefined in
 * an unpartitioned group): only replicas that hold the same partitions
 * compare result digests or vouch for each other's state.
 */
export const holdingTag = (s: PeerState, holding: readonly number[] | undefined = holdingList(s)): string | undefined => holding?.join('.')

export const holdingList = (s: PeerState): number[] | undefined => s.parts === undefined ? undefined : [...s.parts.have].sort((a, b) => a - b)

/** How the evaluator takes a thunk: skip it, take it in a mode (with what was forwarded to it), or stop before it. */
export type Take =
  | { readonly t: 'skip' }
  | { readonly t: 'take', readonly mode: number, readonly remote: readonly ForwardedReads[] | undefined }
  | { readonly t: 'wait', readonly ahead: boolean }

export function takeThunk (s: PeerState, thunk: Thunk): Take {
  const p = s.parts as PartState
  const parts = thunkParts(thunk, p.spec)
  const here = evaluates(parts, p.have)
  // The partitions' placed replicas forward (others expect it of them), voters now or not.
  const placed = p.placement.voters.includes(s.id)
  const forwards = placed && parts.cross && [...parts.reads].some(q => p.have.has(q))
  if (!here) {
    if (thunk.coordinator === s.id && s.waiters.has(thunk.clientTxnId)) p.awaiting.set(thunk.ts, { thunk, since: s.now, asked: s.now })
    if (s.minted.get(thunk.clientTxnId) === thunk.ts) s.minted.delete(thunk.clientTxnId)
    return forwards ? { t: 'take', mode: FORWARD, remote: undefined } : { t: 'skip' }
  }
  const forwardNow = forwards && !(p.waiting?.thunk.ts === thunk.ts && p.waiting.forwarded)
  if (!covered(parts, p.have, p.inbox.get(thunk.ts))) {
    if (p.waiting?.thunk.ts !== thunk.ts) p.waiting = { thunk, since: s.now, asked: s.now, forwarded: false }
    return { t: 'wait', ahead: forwardNow }
  }
  return { t: 'take', mode: EVAL | (forwardNow ? FORWARD : 0), remote: p.inbox.get(thunk.ts) ?? [] }
}

function covered (parts: ThunkParts, have: ReadonlySet<number>, got: readonly ForwardedReads[] | undefined): boolean {
  for (const q of parts.reads) if (!have.has(q) && got?.some(f => f.parts.includes(q)) !== true) return false
  return true
}

/** The plan of a run the evaluator collected (modes and forwarded reads per thunk). */
export function planOf (s: PeerState, modes: readonly number[], remote: ReadonlyArray<readonly ForwardedReads[] | undefined>): RunPlan {
  return { holding: holdingList(s) as number[], modes, remote }
}

export { AHEAD, EVAL, FORWARD }

/**
 * After a run: the reads this replica forwards go to the thunks' other
 * replicas (the voters placed on a partition it is evaluated in that do not
 * hold what is forwarded), results go to coordinators that do not evaluate
 * them, and what is no longer needed is dropped.
 */
export function afterRun (s: PeerState, run: readonly Thunk[], plan: RunPlan, applied: AppliedRun): void {
  const p = s.parts as PartState
  const out = new Map<string, ForwardedReads[]>()
  let f = 0
  run.forEach((thunk, i) => {
    const mode = plan.modes[i] as number
    if ((mode & FORWARD) !== 0) {
      const fwd = (applied.forwards ?? [])[f++]
      // Sent already if the applier gave them before it wrote the run (onRunForwards).
      if (fwd !== undefined && !p.early.delete(thunk.ts)) forwardTo(s, thunk, fwd, out)
      if ((mode & AHEAD) !== 0 && p.waiting?.thunk.ts === thunk.ts) p.waiting.forwarded = true
    }
    const result = applied.results[i]
    if (result !== undefined) reportResult(s, thunk, result)
    if ((mode & AHEAD) === 0) p.inbox.delete(thunk.ts)
  })
  for (const [to, items] of out) send(s, to, { t: 'fwd', items })
  if (p.waiting !== undefined && p.waiting.thunk.ts < s.frontier) p.waiting = undefined
  for (const ts of p.inbox.keys()) if (ts < s.frontier) p.inbox.delete(ts)
  for (const ts of p.early) if (ts < s.frontier) p.early.delete(ts)
}

/**
 * The run's forwarded reads, before the applier writes the run: the other
 * replicas of a cross-partition thunk wait on them, and a store write less
 * on that path is a shorter cross-partition transaction. They are the values
 * below the thunk's timestamp, which is below the watermark: fixed, whatever
 * becomes of this run (a crash before its write evaluates it again, to the
 * same reads).
 */
export function onRunForwards (s: PeerState, run: readonly Thunk[], plan: RunPlan, forwards: readonly ForwardedReads[]): void {
  const p = s.parts
  if (p === undefined || s.evaluation !== 'running') return
  const out = new Map<string, ForwardedReads[]>()
  let f = 0
  run.forEach((thunk, i) => {
    if (((plan.modes[i] as number) & FORWARD) === 0) return
    const fwd = forwards[f++]
    if (fwd === undefined || p.early.has(thunk.ts)) return
    p.early.add(thunk.ts)
    forwardTo(s, thunk, fwd, out)
  })
  for (const [to, items] of out) send(s, to, { t: 'fwd', items })
}

function forwardTo (s: PeerState, thunk: Thunk, fwd: ForwardedReads, out: Map<string, ForwardedReads[]>): void {
  const p = s.parts as PartState
  p.made.set(thunk.ts, fwd)
  if (p.made.size > RECENT_KEPT) p.made.delete(p.made.keys().next().value as Timestamp)
  const placed = p.placement
  const to = new Set<string>(p.wanted.get(thunk.ts) ?? [])
  p.wanted.delete(thunk.ts)
  for (const q of thunkParts(thunk, p.spec).active) {
    for (const v of placed.replicas[q] ?? []) {
      if (v === s.id) continue
      const theirs = placed.holding(v)
      if (!fwd.parts.every(x => theirs.has(x))) to.add(v)
    }
  }
  // Observers that follow some partitions, one the thunk is evaluated in, and lack what is forwarded (they would ask).
  for (const [o, theirs] of p.observerParts) {
    if (!s.observers.has(o)) { p.observerParts.delete(o); continue }
    const active = thunkParts(thunk, p.spec).active
    if ([...active].some(q => theirs.has(q)) && !fwd.parts.every(x => theirs.has(x))) to.add(o)
  }
  for (const v of to) {
    let list = out.get(v)
    if (list === undefined) { list = []; out.set(v, list) }
    list.push(fwd)
  }
}

/** A coordinator that does not evaluate its thunk hears its result from the first voter placed on its first partition evaluated. */
function reportResult (s: PeerState, thunk: Thunk, result: TxnResult): void {
  const p = s.parts as PartState
  p.results.set(thunk.ts, { clientTxnId: thunk.clientTxnId, result })
  if (p.results.size > RECENT_KEPT) p.results.delete(p.results.keys().next().value as Timestamp)
  const askers = p.resultWanted.get(thunk.ts)
  p.resultWanted.delete(thunk.ts)
  const to = new Set(askers ?? [])
  if (thunk.coordinator !== s.id) {
    const placed = p.placement
    const active = [...thunkParts(thunk, p.spec).active].sort((a, b) => a - b)
    const theirs = placed.holding(thunk.coordinator)
    const first = placed.replicas[active[0] as number]?.[0]
    if (!active.some(q => theirs.has(q)) && first === s.id) to.add(thunk.coordinator)
  }
  for (const c of to) send(s, c, { t: 'res', items: [{ ts: thunk.ts, clientTxnId: thunk.clientTxnId, result }] })
}

/** Reads a replica of another partition forwarded. */
export function onForwarded (s: PeerState, from: string, items: ReadonlyArray<ForwardedReads>): boolean {
  const p = s.parts
  if (p === undefined || !trusted(s, from)) { count(s, 'fwd-refused'); return false }
  let useful = false
  for (const f of items) {
    if (f.ts < s.frontier) continue
    const list = p.inbox.get(f.ts) ?? []
    if (list.length >= 16) continue
    list.push(f)
    p.inbox.set(f.ts, list)
    useful = true
  }
  return useful
}

/**
 * A replica that missed some forwarded reads asks for them again: answered
 * from the forwards made lately, once this replica gets there, or (past it,
 * and no longer remembered, say after a restart) read from the store below
 * the thunk's timestamp.
 */
export function onForwardRequest (s: PeerState, from: string, items: ReadonlyArray<{ readonly ts: Timestamp, readonly keys: readonly string[], readonly ranges?: readonly KeyRange[] }>): void {
  const p = s.parts
  if (p === undefined) return
  const made: ForwardedReads[] = []
  for (const item of items) {
    const known = p.made.get(item.ts)
    if (known !== undefined) { made.push(known); continue }
    if (item.ts >= s.frontier) {
      const askers = p.wanted.get(item.ts) ?? new Set()
      askers.add(from)
      p.wanted.set(item.ts, askers)
      continue
    }
    const keys = item.keys.filter(k => p.have.has(partitionOf(k, p.spec)))
    const ranges = (item.ranges ?? []).filter(r => { const q = partitionOfRange(r, p.spec); return q !== undefined && p.have.has(q) })
    const parts = [...thunkParts({ reads: keys, writes: [], ranges }, p.spec).reads].filter(q => p.have.has(q)).sort((a, b) => a - b)
    if (keys.length + ranges.length > 0) emit(s, { t: 'read-forward', to: from, ts: item.ts, parts, keys, ranges })
  }
  if (made.length > 0) send(s, from, { t: 'fwd', items: made })
}

/** The partitions this peer follows when they are not all of them and it is not placed on any (it then takes projections). */
export function projectedParts (s: PeerState): ReadonlySet<number> | undefined {
  const p = s.parts
  if (p === undefined || p.declared.size === p.spec.count || p.placement.voters.includes(s.id)) return undefined
  return p.declared
}

/** The partitions an observer follows, when not all of them (its hello says so). */
export function declaredParts (s: PeerState): number[] | undefined {
  const parts = projectedParts(s)
  return parts === undefined ? undefined : [...parts].sort((a, b) => a - b)
}

/** An observer's hello named the partitions it follows (a placed replica forwards to it). */
export function noteObserverParts (s: PeerState, from: string, parts: readonly number[] | undefined): void {
  const p = s.parts
  if (p === undefined || s.current.voters.includes(from)) return
  if (parts === undefined) p.observerParts.delete(from)
  else p.observerParts.set(from, new Set(parts))
}

/** What the store read for a replica that missed a forward. */
export function onForwardRead (s: PeerState, to: string, fwd: ForwardedReads | undefined): void {
  if (fwd !== undefined && s.phase === 'running') send(s, to, { t: 'fwd', items: [fwd] })
}

/** A replica's answer with the results of thunks this voter coordinated. */
export function onResults (s: PeerState, from: string, items: ReadonlyArray<{ readonly ts: Timestamp, readonly clientTxnId: string, readonly result: TxnResult }>): void {
  const p = s.parts
  if (p === undefined || !trusted(s, from)) { count(s, 'res-refused'); return }
  for (const r of items) {
    // Often ahead of this voter's own evaluation: the thunk is still one it minted then, not yet one it skipped.
    const waiting = p.awaiting.get(r.ts)
    const mine = waiting?.thunk.clientTxnId === r.clientTxnId || s.minted.get(r.clientTxnId) === r.ts
    if (!mine) continue
    p.awaiting.delete(r.ts)
    if (s.minted.get(r.clientTxnId) === r.ts) s.minted.delete(r.clientTxnId)
    resolveWaiters(s, r.clientTxnId, r.result)
  }
}

export function onResultRequest (s: PeerState, from: string, stamps: readonly Timestamp[]): void {
  const p = s.parts
  if (p === undefined) return
  const items: Array<{ ts: Timestamp, clientTxnId: string, result: TxnResult }> = []
  for (const ts of stamps) {
    const done = p.results.get(ts)
    if (done !== undefined) items.push({ ts, ...done })
    else if (ts >= s.frontier) {
      const askers = p.resultWanted.get(ts) ?? new Set()
      askers.add(from)
      p.resultWanted.set(ts, askers)
    }
  }
  if (items.length > 0) send(s, from, { t: 'res', items })
}

/**
 * Asks again, every gap-retry interval, for forwarded reads the evaluator
 * waits on and for results of thunks this voter coordinated; results
 * nobody will bring (their caller gave up) are dropped.
 */
export function tickPartitions (s: PeerState): void {
  const p = s.parts
  if (p === undefined) return
  const every = s.options.gapRetryMs
  const w = p.waiting
  if (w !== undefined && s.now - w.asked >= every) {
    w.asked = s.now
    const thunk = w.thunk
    const placed = p.placement
    const parts = thunkParts(thunk, p.spec)
    const got = p.inbox.get(thunk.ts) ?? []
    const ask = new Set<string>()
    for (const q of parts.reads) {
      if (p.have.has(q) || got.some(f => f.parts.includes(q))) continue
      for (const v of placed.replicas[q] ?? []) if (v !== s.id) ask.add(v)
    }
    const m: Message = { t: 'fwd-req', items: [{ ts: thunk.ts, keys: thunk.reads, ...(thunk.ranges === undefined ? {} : { ranges: thunk.ranges }) }] }
    for (const v of ask) send(s, v, m)
  }
  const byVoter = new Map<string, Timestamp[]>()
  for (const [ts, a] of p.awaiting) {
    if (!s.waiters.has(a.thunk.clientTxnId)) { p.awaiting.delete(ts); continue }
    if (s.now - a.asked < every * 4) continue
    a.asked = s.now
    const placed = p.placement
    for (const q of thunkParts(a.thunk, p.spec).active) for (const v of placed.replicas[q] ?? []) if (v !== s.id) byVoter.set(v, [...(byVoter.get(v) ?? []), ts])
  }
  for (const [v, stamps] of byVoter) send(s, v, { t: 'res-req', stamps: stamps.slice(0, 256) })
}

/** Whether anything partitioned evaluation waits on is due (schedule.ts). */
export function partitionsBusy (s: PeerState): boolean {
  return s.parts !== undefined && (s.parts.waiting !== undefined || s.parts.awaiting.size > 0)
}

/** Forwarded reads and results are taken from voters, and from the partitions' placed replicas (voters or not now). */
function trusted (s: PeerState, peer: string): boolean {
  return s.parts?.placement.voters.includes(peer) === true || isVoterOfKnownEpoch(s, peer)
}

