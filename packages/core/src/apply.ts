import { DEFAULT_TXN_RETENTION_MS, DEFAULT_TXN_SKEW_MS, DIGEST_CHECKPOINT_EVERY } from './constants.js'
import { Hasher } from './hash.js'
import { StateDigest } from './state-digest.js'
import { evaluate, type EvaluateOptions, type ProcedureRegistry } from './procedures.js'
import type { Settlement, Store, StoreBatch } from './store.js'
import { maxTimestamp, timestampMs, timestampSuccessor, type Timestamp } from './timestamp.js'
import type { Cursor, GenesisIdentity, GroupConfig, Outcome, Revoked, Thunk, TxnResult } from './types.js'
import { metaEntry } from './protocol/meta.js'
import { canonical, type Value } from './value.js'
import { callerVerdicts, type CallVerifier } from './caller.js'
import { callerOf, type CallerVerdict, type InviteReader, type ReadInvite } from './claims.js'
import { inRange, type KeyRange } from './key-range.js'

/** What applying a run did: one result per thunk (in order), the cursor it persisted, and every key it wrote. */
export interface AppliedRun {
  readonly results: TxnResult[]
  readonly cursor: Cursor
  readonly written: string[]
  /** The digest after every DIGEST_CHECKPOINT_EVERY-th thunk of the replica's history that fell in this run. */
  readonly checkpoints: Array<{ readonly count: number, readonly digest: string }>
  /** The StateDigest after each thunk of the run, two lanes each (absent: the cursor has no state digest). */
  readonly states?: number[]
}

/** The group-wide rules evaluation follows besides the procedures (from GroupConfig; the same on every replica). */
export interface RunRules {
  readonly txnRetentionMs: number
  readonly txnSkewMs: number
  /** What callers sign for (callStatement). */
  readonly groupId: string
  /** Every call must carry a caller signature that holds (GroupConfig.signedCalls). */
  readonly signedCalls: boolean
  /** GroupConfig.revoked: a verified caller (or its invite) revoked below a call's timestamp is refused. */
  readonly revoked: readonly Revoked[]
  /** GroupConfig.genesis: what callers' invites are checked against (absent: callers are known by id alone). */
  readonly genesis?: GenesisIdentity
}

export function runRules (config: GroupConfig): RunRules {
  return { txnRetentionMs: config.txnRetentionMs ?? DEFAULT_TXN_RETENTION_MS, txnSkewMs: config.txnSkewMs ?? DEFAULT_TXN_SKEW_MS, groupId: config.groupId, signedCalls: config.signedCalls ?? false, revoked: config.revoked ?? [], ...(config.genesis === undefined ? {} : { genesis: config.genesis }) }
}

/**
 * Evaluates a run of thunks in timestamp order and settles them in one store
 * batch together with `cursor` (its `last`, `count` and `digest` are
 * overwritten from the run). Every replica must get the same results from
 * the same thunks. The default runs in-process against the peer's store; a
 * browser database runs it in a Web Worker next to its IndexedDB store.
 */
export type RunApplier = (run: readonly Thunk[], base: Cursor, rules: RunRules) => Promise<AppliedRun>

export interface ApplierInit {
  readonly store: Store
  readonly registry: ProcedureRegistry
  readonly maxValueBytes?: number
  /** Checks callers' signatures (a group with `signedCalls`): the peer's DecisionSigner's `verify`. */
  readonly verifyCall?: CallVerifier
  /** Reads the invites callers bring (net-libp2p's `inviteReader`); without it a call that brings one is refused. */
  readonly readInvite?: InviteReader
  /**
   * Most keys whose newest value the applier remembers between runs (it is
   * the only writer of settlements and applies runs in timestamp order, so
   * what it wrote last is what the next run would read). 0 disables it.
   * @default 65536
   */
  readonly cacheKeys?: number
}

/** The exactly-once record: which thunk decided a clientTxnId, and how. A string, so stores copy nothing. */
export interface TxnRecord { readonly ts: Timestamp, readonly outcome: Outcome }

const BYTES_TAG = '\u0000bytes'
const toJson = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => x instanceof Uint8Array ? { [BYTES_TAG]: Array.from(x) } : x)
const fromJson = (s: string): unknown => JSON.parse(s, (_k, x: unknown) => {
  if (x !== null && typeof x === 'object' && BYTES_TAG in x) return new Uint8Array((x as Record<string, number[]>)[BYTES_TAG] as number[])
  return x
})
/** `ts` + `c` + value JSON, or `ts` + `a` + [error, reason] JSON. */
export const encodeRecord = (ts: Timestamp, o: Outcome): string =>
  o.status === 'committed' ? `${ts}c${o.value === null ? '' : toJson(o.value)}` : `${ts}a${JSON.stringify([o.error, o.reason])}`
export const decodeRecord = (s: string): TxnRecord => {
  const ts = s.slice(0, 36) as Timestamp
  const body = s.slice(37)
  if (s[36] === 'c') return { ts, outcome: { status: 'committed', value: body === '' ? null : fromJson(body) as Value } }
  const [error, reason] = JSON.parse(body) as [string, string]
  return { ts, outcome: { status: 'aborted', error, reason } }
}

export function toResult (ts: Timestamp, outcome: Outcome, duplicate: boolean): TxnResult {
  const base = outcome.status === 'committed'
    ? { status: 'committed' as const, value: outcome.value, ts }
    : { status: 'aborted' as const, reason: outcome.reason, error: outcome.error, ts }
  return duplicate ? { ...base, duplicate: true } : base
}

/** The in-process applier: one batched read, evaluation against an overlay, one relaxed settlement batch. */
export function storeApplier (init: ApplierInit): RunApplier {
  const evalOpts = init.maxValueBytes === undefined ? {} : { maxValueBytes: init.maxValueBytes }
  const cacheKeys = init.cacheKeys ?? 65_536
  // key → its newest value as of the end of the last applied run (undefined: absent or deleted).
  const latest = new Map<string, Value | undefined>()
  let cachedUpTo: Timestamp | undefined
  const invites = new Map<string, ReadInvite | null | Promise<ReadInvite | null>>()
  return async (run, base, rules) => {
    try {
      return await applyOnce(run, base, rules)
    } catch (err) {
      latest.clear()
      cachedUpTo = undefined
      throw err
    }
  }

  async function applyOnce (run: readonly Thunk[], base: Cursor, rules: RunRules): Promise<AppliedRun> {
    // The cache answers only for the run that follows the last one it saw
    // (a replica that skipped ahead, e.g. from a snapshot, starts afresh).
    if (cachedUpTo === undefined || base.last !== cachedUpTo) latest.clear()
    const overlay = new Map<string, Value | undefined>()
    const keys = keysToRead(run, k => {
      if (!latest.has(k)) return false
      overlay.set(k, latest.get(k))
      return true
    })
    const ids = run.map(t => t.clientTxnId)
    const ranges = rangesToRead(run)
    const below = (run[0] as Thunk).ts
    const [found, records, inRanges] = await Promise.all([
      keys.length === 0 ? [] : init.store.latestValues(keys, below),
      init.store.txnRecords(ids),
      Promise.all(ranges.map(async r => await init.store.range(r, below)))
    ])
    for (let i = 0; i < keys.length; i++) overlay.set(keys[i] as string, found[i])
    const baseRanges = rangeKeysOf(ranges, inRanges, overlay)
    const verdicts = await checkCallers(run, rules, init.verifyCall, init.readInvite, invites)
    const { batch, applied } = settleRun(init.registry, run, base, overlay, records, rules, evalOpts, verdicts, baseRanges)
    await init.store.write(batch)
    if (cacheKeys > 0) {
      if (latest.size + overlay.size > cacheKeys) latest.clear()
      for (const [k, v] of overlay) latest.set(k, v)
      cachedUpTo = applied.cursor.last
    }
    return applied
  }
}

/** The verdict on each signed caller of a run (and its invite), when the group requires signed calls (none otherwise). */
export function checkCallers (run: readonly Thunk[], rules: RunRules, verify: CallVerifier | undefined, readInvite?: InviteReader, invites?: Map<string, ReadInvite | null | Promise<ReadInvite | null>>): Map<number, CallerVerdict> | Promise<Map<number, CallerVerdict>> {
  if (!rules.signedCalls) return new Map()
  // A replica that cannot check refuses every call alike (it is misconfigured: Peer.open refuses to start so).
  return callerVerdicts(rules.groupId, run, verify ?? (() => false), readInvite, invites)
}

/**
 * The keys a run reads or writes that `known` cannot answer, each once (a
 * written key's old value leaves the state digest). Everything below the
 * run is settled and nothing above it is, so one read of these keys' newest
 * versions below the run's first timestamp serves the whole run; the run's
 * own writes are carried forward in the overlay.
 */
export function keysToRead (run: readonly Thunk[], known: (key: string) => boolean = () => false): string[] {
  const seen = new Set<string>()
  const wanted: string[] = []
  const want = (k: string): void => {
    if (seen.has(k)) return
    seen.add(k)
    if (!known(k)) wanted.push(k)
  }
  for (const t of run) {
    for (const k of t.reads) want(k)
    for (const k of t.writes) want(k)
  }
  return wanted
}

/** The distinct key ranges a run's thunks declared they read whole. */
export function rangesToRead (run: readonly Thunk[]): KeyRange[] {
  const out = new Map<string, KeyRange>()
  for (const t of run) for (const r of t.ranges ?? []) out.set(rangeId(r), r)
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

/**
 * Why a thunk may not run at its timestamp whatever the store holds:
 * its clientTxnId was first submitted more than the retention before it
 * (ExpiredTransactionError), or its `firstAt` lies more than the skew
 * after it (ClockSkewError; coordinators refuse those, so only a faulty one
 * sends it). Checked before the exactly-once record, which some replicas
 * may have collected by then and others not: the answer must not depend on
 * it. Undefined: it may run.
 *
 * Why a record is never missed: a coordinator mints only when `firstAt <=
 * ts + skew`, so a thunk that decided a clientTxnId at `ts1` has `ts1 >=
 * firstAt - skew`; a retry at `ts2` runs only when `ts2 - firstAt <=
 * retention`, so `ts2 - ts1 <= retention + skew`; and a replica collects
 * records below its GC point (at most its frontier, at most `ts2` while
 * `ts2` is still to be evaluated) less `retention + skew`.
 */
export function refusedAt (thunk: Thunk, rules: RunRules): Outcome | undefined {
  const age = timestampMs(thunk.ts) - thunk.firstAt
  if (age > rules.txnRetentionMs) {
    return { status: 'aborted', error: 'ExpiredTransactionError', reason: `${thunk.clientTxnId} was first submitted ${age} ms before ${thunk.ts}, longer ago than the group's txnRetentionMs (${rules.txnRetentionMs}): whether an earlier attempt took effect is no longer known` }
  }
  if (-age > rules.txnSkewMs) {
    return { status: 'aborted', error: 'ClockSkewError', reason: `${thunk.clientTxnId} claims a first submission ${-age} ms after its timestamp ${thunk.ts}, more than the group's txnSkewMs (${rules.txnSkewMs})` }
  }
  return undefined
}

const NONE_REVOKED: ReadonlyMap<string, Timestamp> = new Map()

/**
 * Evaluates a run in timestamp order against `overlay` (the newest value of
 * every key it reads or writes, as of just below the run) and the exactly-once records
 * of its clientTxnIds (`records[i]` for `run[i]`). Pure: returns the one
 * relaxed store batch that settles the run and what applying it did. The
 * overlay ends holding the run's writes.
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
  baseRanges: ReadonlyMap<string, readonly string[]> = new Map()
): { batch: StoreBatch, applied: AppliedRun } {
  const decided = new Map<string, string>()
  for (let i = 0; i < run.length; i++) {
    const record = records[i]
    if (record !== undefined) decided.set((run[i] as Thunk).clientTxnId, record)
  }
  const read = (k: string): Value | undefined => overlay.get(k)
  const settle: Settlement[] = []
  const txns: Array<[string, string]> = []
  const results: TxnResult[] = []
  const written = new Set<string>()
  // A declared range's keys just before a thunk: those live below the run, and those the run wrote so far (the overlay has each one's value; a deletion hides it).
  const rangeKeys = (r: KeyRange): readonly string[] => {
    const before = baseRanges.get(rangeId(r)) ?? []
    const since = [...written].filter(k => inRange(k, r))
    return since.length === 0 ? before : [...new Set([...before, ...since])]
  }
  const hasher = Hasher.restore(base.digest)
  // The state digest moves by what the run changes: each written key's old entry out, its new one in.
  const state = base.state === undefined ? undefined : StateDigest.restore(base.state)
  const checkpoints: Array<{ count: number, digest: string }> = []
  const states: number[] = []
  let count = base.count
  // Only signed calls have a verified caller to refuse; most groups revoke nothing.
  const revokedFrom = rules.signedCalls && rules.revoked.length > 0 ? new Map(rules.revoked.map(r => [`${r.kind}:${r.id}`, r.from] as const)) : NONE_REVOKED
  for (let i = 0; i < run.length; i++) {
    const thunk = run[i] as Thunk
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
      const opts = thunk.ranges === undefined ? evalOpts : { ...evalOpts, rangeKeys }
      const ev = evaluate(registry, thunk, read, who !== undefined && 'caller' in who ? { ...opts, caller: who.caller } : opts)
      outcome = ev.outcome
      dedupRecord = encodeRecord(thunk.ts, outcome)
      writes = ev.writes as Array<readonly [string, Value | undefined]>
      decided.set(thunk.clientTxnId, dedupRecord)
      txns.push([thunk.clientTxnId, dedupRecord])
      results.push(toResult(thunk.ts, outcome, false))
    }
    for (const [k, v] of writes) {
      if (state !== undefined) {
        const old = overlay.get(k)
        if (old !== undefined) state.dropEntry(k, old)
        if (v !== undefined) state.entry(k, v)
      }
      overlay.set(k, v)
      written.add(k)
    }
    settle.push({ ts: thunk.ts, outcome, writes })
    // The rolling digest covers every outcome and every write in timestamp
    // order (not how runs were cut): replicas that diverge disagree on it.
    hasher.text(thunk.ts).text(dedupRecord ?? outcome.status)
    for (const [k, v] of writes) hasher.text(k).text(v === undefined ? '' : typeof v === 'number' ? String(v) : canonical(v))
    if (++count % DIGEST_CHECKPOINT_EVERY === 0) checkpoints.push({ count, digest: hasher.digest() })
    if (state !== undefined) states.push(...state.lanes)
  }
  const last = (run[run.length - 1] as Thunk).ts
  const cursor: Cursor = { ...base, frontier: maxTimestamp(base.frontier, timestampSuccessor(last)), last, count: base.count + run.length, digest: hasher.state, ...(state === undefined ? {} : { state: state.lanes }) }
  return {
    batch: { settle, txns, meta: [metaEntry('cursor', cursor)], durability: 'relaxed' },
    applied: { results, cursor, written: [...written], checkpoints, ...(state === undefined ? {} : { states }) }
  }
}
