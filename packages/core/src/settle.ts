import { DIGEST_CHECKPOINT_EVERY } from './constants.js'
import { Hasher } from './hash.js'
import { StateDigest } from './state-digest.js'
import { evaluate, type EvaluateOptions, type ProcedureRegistry } from './procedures.js'
import type { Settlement, StoreBatch } from './store.js'
import { maxTimestamp, timestampSuccessor, type Timestamp } from './timestamp.js'
import type { Cursor, Outcome, Thunk, TxnResult } from './types.js'
import { metaEntry } from './protocol/meta.js'
import { canonical, type Value } from './value.js'
import { callerOf, type CallerVerdict } from './claims.js'
import { inRange, type KeyRange } from './key-range.js'
import { partitionOf, partitionOfRange, thunkParts, type PartitionSpec } from './partition.js'
import { decodeRecord, encodeRecord, refusedAt, toResult, type AppliedRun, type ForwardedReads, type RunPlan, type RunRules } from './run-rules.js'

export type { ForwardedReads, RunPlan } from './run-rules.js'

/** A thunk of a run is evaluated here (EVAL), has its reads forwarded from here (FORWARD), or both. */
export const EVAL = 1
export const FORWARD = 2
/**
 * The run's last thunk is evaluated here but waits for values forwarded from
 * elsewhere: this run only forwards its reads (so every replica of a
 * cross-partition thunk sends before it waits, and none waits on another
 * that waits on it), and it is evaluated in a later run.
 */
export const AHEAD = 4

/** Which keys and ranges a replica holds, for one run. */
export interface Holds {
  readonly key: (key: string) => boolean
  readonly range: (range: KeyRange) => boolean
}

const HOLDS_ALL: Holds = { key: () => true, range: () => true }

export function holdsOf (spec: PartitionSpec | undefined, plan: RunPlan | undefined): Holds {
  if (spec === undefined || plan === undefined) return HOLDS_ALL
  const held = new Set(plan.holding)
  const seen = new Map<string, boolean>()
  return {
    key: k => {
      let h = seen.get(k)
      if (h === undefined) { h = held.has(partitionOf(k, spec)); seen.set(k, h) }
      return h
    },
    range: r => { const p = partitionOfRange(r, spec); return p !== undefined && held.has(p) }
  }
}

const modeOf = (plan: RunPlan | undefined, i: number): number => plan?.modes[i] ?? EVAL

/**
 * The keys a run reads or writes that `known` cannot answer, each once (a
 * written key's old value leaves the state digest). Everything below the
 * run is settled and nothing above it is, so one read of these keys' newest
 * versions below the run's first timestamp serves the whole run; the run's
 * own writes are carried forward in the overlay. A partitioned replica reads
 * only keys it holds: what a thunk evaluated here reads elsewhere comes
 * forwarded, and a thunk only forwarded from here writes nothing here.
 */
export function keysToRead (run: readonly Thunk[], known: (key: string) => boolean = () => false, plan?: RunPlan, holds: Holds = HOLDS_ALL): string[] {
  const seen = new Set<string>()
  const wanted: string[] = []
  const want = (k: string): void => {
    if (seen.has(k)) return
    seen.add(k)
    if (holds.key(k) && !known(k)) wanted.push(k)
  }
  run.forEach((t, i) => {
    for (const k of t.reads) want(k)
    if ((modeOf(plan, i) & EVAL) !== 0) for (const k of t.writes) want(k)
  })
  return wanted
}

/** The distinct key ranges a run's thunks declared they read whole (those a partitioned replica holds). */
export function rangesToRead (run: readonly Thunk[], holds: Holds = HOLDS_ALL): KeyRange[] {
  const out = new Map<string, KeyRange>()
  for (const t of run) for (const r of t.ranges ?? []) if (holds.range(r)) out.set(rangeId(r), r)
  return [...out.values()]
}

const rangeId = (r: KeyRange): string => JSON.stringify([r.start, r.end ?? null])

/**
 * The live keys of each range just below a run (what `store.range` found
 * there), by range; their values go into `overlay` (a key read as well has
 * the same value there already).
 */
export function rangeKeysOf (ranges: readonly KeyRange[], found: ReadonlyArray<ReadonlyArray<readonly [string, Value]>>, overlay: Map<string, Value | undefined>): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>()
  ranges.forEach((r, i) => {
    const entries = found[i] ?? []
    for (const [k, v] of entries) if (!overlay.has(k)) overlay.set(k, v)
    out.set(rangeId(r), entries.map(([k]) => k))
  })
  return out
}

const NONE_REVOKED: ReadonlyMap<string, Timestamp> = new Map()

/** What a thunk evaluated here reads from partitions held elsewhere. */
class Remote {
  readonly values = new Map<string, Value>()
  readonly ranges = new Map<string, readonly string[]>()
  constructor (forwarded: readonly ForwardedReads[] | undefined) {
    for (const f of forwarded ?? []) {
      for (const [k, v] of f.values) this.values.set(k, v)
      for (const [start, end, keys] of f.ranges) this.ranges.set(rangeId({ start, end: end ?? undefined }), keys)
    }
  }
}

/**
 * Evaluates a run in timestamp order against `overlay` (the newest value of
 * every key it reads or writes, as of just below the run) and the exactly-once records
 * of its clientTxnIds (`records[i]` for `run[i]`). Pure: returns the one
 * relaxed store batch that settles the run and what applying it did. The
 * overlay ends holding the run's writes. With a plan (a partitioned
 * replica), reads of partitions not held here come from the plan's
 * forwarded values, only writes to held keys are settled, and the reads of
 * thunks forwarded from here are returned as `forwards`.
 */
export function settleRun (
  registry: ProcedureRegistry,
  run: readonly Thunk[],
  base: Cursor,
  overlay: Map<string, Value | undefined>,
  records: ReadonlyArray<string | undefined>,
  rules: RunRules,
  evalOpts: EvaluateOptions = {},
  verdicts: ReadonlyMap<number, CallerVerdict> = new Map(),
  baseRanges: ReadonlyMap<string, readonly string[]> = new Map(),
  plan?: RunPlan
): { batch: StoreBatch, applied: AppliedRun } {
  const holds = holdsOf(rules.partitions, plan)
  const decided = new Map<string, string>()
  for (let i = 0; i < run.length; i++) {
    const record = records[i]
    if (record !== undefined) decided.set((run[i] as Thunk).clientTxnId, record)
  }
  const settle: Settlement[] = []
  const txns: Array<[string, string]> = []
  const results: Array<TxnResult | undefined> = []
  const forwards: ForwardedReads[] = []
  const written = new Set<string>()
  // A declared range's keys just before a thunk: those live below the run, and those the run wrote so far (the overlay has each one's value; a deletion hides it).
  const localRangeKeys = (r: KeyRange): readonly string[] => {
    const before = baseRanges.get(rangeId(r)) ?? []
    const since = [...written].filter(k => inRange(k, r))
    return since.length === 0 ? before : [...new Set([...before, ...since])]
  }
  const hasher = Hasher.restore(base.digest)
  // The state digest moves by what the run changes: each written key's old entry out, its new one in.
  const state = base.state === undefined ? undefined : StateDigest.restore(base.state)
  const checkpoints: Array<{ count: number, digest: string }> = []
  const states: number[] = []
  // A partitioned replica keeps each partition's digest too, so that partition's replicas can vouch for it.
  const parts = plan === undefined || rules.partitions === undefined ? undefined : new PartDigests(base.parts, rules.partitions)
  const partStates: Array<readonly [Timestamp, number, number, number]> = []
  let count = base.count
  let last = base.last
  // Only signed calls have a verified caller to refuse; most groups revoke nothing.
  const revokedFrom = rules.signedCalls && rules.revoked.length > 0 ? new Map(rules.revoked.map(r => [`${r.kind}:${r.id}`, r.from] as const)) : NONE_REVOKED
  for (let i = 0; i < run.length; i++) {
    const thunk = run[i] as Thunk
    const mode = modeOf(plan, i)
    if ((mode & FORWARD) !== 0) forwards.push(forwardOf(thunk, holds, rules.partitions, overlay, localRangeKeys))
    if ((mode & AHEAD) === 0) last = thunk.ts
    if ((mode & EVAL) === 0) { results.push(undefined); continue }
    const remote = plan === undefined ? undefined : new Remote(plan.remote[i])
    const read = remote === undefined ? (k: string) => overlay.get(k) : (k: string) => holds.key(k) ? overlay.get(k) : remote.values.get(k)
    const rangeKeys = remote === undefined ? localRangeKeys : (r: KeyRange) => holds.range(r) ? localRangeKeys(r) : remote.ranges.get(rangeId(r)) ?? []
    // A call nobody can vouch for has no effect and leaves no record (the real caller may still make it).
    const who = rules.signedCalls ? callerOf(thunk, verdicts.get(i), rules.genesis, rules.groupId, revokedFrom) : undefined
    const refused = refusedAt(thunk, rules) ?? (who !== undefined && 'refused' in who ? who.refused : undefined)
    const prior = decided.get(thunk.clientTxnId)
    let outcome: Outcome
    let writes: Array<readonly [string, Value | undefined]>
    let dedupRecord: string | undefined
    if (refused !== undefined) {
      // No effect and no record: an earlier record of the id (if this replica still holds it) stays.
      outcome = refused
      writes = []
      results.push(toResult(thunk.ts, outcome, false))
    } else if (typeof prior === 'string') {
      // A retry of a transaction that already took effect: no effect, same answer.
      const record = decodeRecord(prior)
      outcome = { status: 'aborted', reason: `duplicate of ${record.ts}`, error: 'DuplicateTransaction' }
      writes = []
      results.push(toResult(record.ts, record.outcome, true))
    } else {
      const badRange = rules.partitions !== undefined && thunk.ranges !== undefined && thunkParts(thunk, rules.partitions).badRange
      if (badRange) {
        outcome = { status: 'aborted', error: 'PartitionRangeError', reason: `${thunk.procedure} declared a key range that spans more than one scope of the group's partitions` }
        writes = []
      } else {
        const opts = thunk.ranges === undefined ? evalOpts : { ...evalOpts, rangeKeys }
        const ev = evaluate(registry, thunk, read, who !== undefined && 'caller' in who ? { ...opts, caller: who.caller } : opts)
        outcome = ev.outcome
        writes = remote === undefined ? ev.writes as Array<readonly [string, Value | undefined]> : ev.writes.filter(([k]) => holds.key(k))
      }
      dedupRecord = encodeRecord(thunk.ts, outcome)
      decided.set(thunk.clientTxnId, dedupRecord)
      txns.push([thunk.clientTxnId, dedupRecord])
      results.push(toResult(thunk.ts, outcome, false))
    }
    for (const [k, v] of writes) {
      const old = overlay.get(k)
      if (state !== undefined) {
        if (old !== undefined) state.dropEntry(k, old)
        if (v !== undefined) state.entry(k, v)
      }
      parts?.change(k, old, v)
      overlay.set(k, v)
      written.add(k)
    }
    if (parts !== undefined) for (const [q, lanes] of parts.changed()) partStates.push([thunk.ts, q, lanes[0], lanes[1]])
    settle.push({ ts: thunk.ts, outcome, writes })
    // The rolling digest covers every outcome and every write in timestamp
    // order (not how runs were cut): replicas that diverge disagree on it.
    hasher.text(thunk.ts).text(dedupRecord ?? outcome.status)
    for (const [k, v] of writes) hasher.text(k).text(v === undefined ? '' : typeof v === 'number' ? String(v) : canonical(v))
    if (++count % DIGEST_CHECKPOINT_EVERY === 0) checkpoints.push({ count, digest: hasher.digest() })
    if (state !== undefined) states.push(...state.lanes)
  }
  const frontier = last === base.last ? base.frontier : maxTimestamp(base.frontier, timestampSuccessor(last))
  const cursor: Cursor = { ...base, frontier, last, count, digest: hasher.state, ...(state === undefined ? {} : { state: state.lanes }), ...(parts === undefined ? {} : { parts: parts.all() }) }
  return {
    batch: { settle, txns, meta: [metaEntry('cursor', cursor)], durability: 'relaxed' },
    applied: { results, cursor, written: [...written], checkpoints, ...(state === undefined ? {} : { states }), ...(plan === undefined ? {} : { forwards, partStates }) }
  }
}

/** What `thunk` reads in the partitions held here, as of now (just before it), for its replicas elsewhere. */
function forwardOf (thunk: Thunk, holds: Holds, spec: PartitionSpec | undefined, overlay: Map<string, Value | undefined>, rangeKeys: (r: KeyRange) => readonly string[]): ForwardedReads {
  const values: Array<readonly [string, Value]> = []
  const ranges: Array<readonly [string, string | null, readonly string[]]> = []
  const parts = new Set<number>()
  for (const k of thunk.reads) {
    if (!holds.key(k)) continue
    if (spec !== undefined) parts.add(partitionOf(k, spec))
    const v = overlay.get(k)
    if (v !== undefined) values.push([k, v])
  }
  for (const r of thunk.ranges ?? []) {
    if (!holds.range(r)) continue
    if (spec !== undefined) parts.add(partitionOfRange(r, spec) as number)
    const live = rangeKeys(r).filter(k => overlay.get(k) !== undefined)
    ranges.push([r.start, r.end ?? null, [...live].sort((x, y) => x < y ? -1 : x > y ? 1 : 0)])
    for (const k of live) values.push([k, overlay.get(k) as Value])
  }
  return { ts: thunk.ts, parts: [...parts].sort((a, b) => a - b), values, ranges }
}

/** The StateDigest of each partition a replica holds values of, moved by its writes. */
class PartDigests {
  private readonly digests = new Map<number, StateDigest>()
  private readonly touched = new Set<number>()
  constructor (from: Cursor['parts'], private readonly spec: PartitionSpec) {
    for (const [q, a, b] of from ?? []) this.digests.set(q, StateDigest.restore([a, b]))
  }

  change (key: string, old: Value | undefined, now: Value | undefined): void {
    const q = partitionOf(key, this.spec)
    let d = this.digests.get(q)
    if (d === undefined) { d = new StateDigest(); this.digests.set(q, d) }
    if (old !== undefined) d.dropEntry(key, old)
    if (now !== undefined) d.entry(key, now)
    this.touched.add(q)
  }

  /** The partitions changed since the last call, with their lanes now. */
  changed (): Array<[number, [number, number]]> {
    const out = [...this.touched].map((q): [number, [number, number]] => [q, (this.digests.get(q) as StateDigest).lanes])
    this.touched.clear()
    return out
  }

  all (): Array<readonly [number, number, number]> {
    return [...this.digests].sort(([a], [b]) => a - b).map(([q, d]) => [q, ...d.lanes] as const)
  }
}
