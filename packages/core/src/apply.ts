import type { Store } from './store.js'
import type { Timestamp } from './timestamp.js'
import type { Cursor, Thunk } from './types.js'
import type { Value } from './value.js'
import type { ProcedureRegistry } from './procedures.js'
import { callerVerdicts, type CallVerifier } from './caller.js'
import type { CallerVerdict, InviteReader, ReadInvite } from './claims.js'
import type { AppliedRun, RunRules } from './run-rules.js'
import { holdsOf, keysToRead, rangeKeysOf, rangesToRead, settleRun, type ForwardedReads, type RunPlan } from './settle.js'

export { runRules, encodeRecord, decodeRecord, toResult, refusedAt, type AppliedRun, type RunRules, type TxnRecord } from './run-rules.js'
export { settleRun, keysToRead, rangesToRead, rangeKeysOf, EVAL, FORWARD, AHEAD, type RunPlan, type ForwardedReads } from './settle.js'

/**
 * Evaluates a run of thunks in timestamp order and settles them in one store
 * batch together with `cursor` (its `last`, `count` and `digest` are
 * overwritten from the run). Every replica must get the same results from
 * the same thunks. The default runs in-process against the peer's store; a
 * browser database runs it in a Web Worker next to its IndexedDB store.
 * A partitioned replica passes its plan: what it holds, which thunks it
 * evaluates and which it forwards reads for, and the reads forwarded to it.
 */
export type RunApplier = (run: readonly Thunk[], base: Cursor, rules: RunRules, plan?: RunPlan, early?: EarlyForwards) => Promise<AppliedRun>

/** Given a partitioned run's forwarded reads as soon as they are known, before the run is written (the peer sends them at once). */
export type EarlyForwards = (forwards: readonly ForwardedReads[]) => void

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

/** The in-process applier: one batched read, evaluation against an overlay, one relaxed settlement batch. */
export function storeApplier (init: ApplierInit): RunApplier {
  const evalOpts = init.maxValueBytes === undefined ? {} : { maxValueBytes: init.maxValueBytes }
  const cacheKeys = init.cacheKeys ?? 65_536
  // key → its newest value as of the end of the last applied run (undefined: absent or deleted).
  const latest = new Map<string, Value | undefined>()
  let cachedUpTo: Timestamp | undefined
  let cachedHolding = ''
  const invites = new Map<string, ReadInvite | null | Promise<ReadInvite | null>>()
  return async (run, base, rules, plan, early) => {
    try {
      return await applyOnce(run, base, rules, plan, early)
    } catch (err) {
      latest.clear()
      cachedUpTo = undefined
      throw err
    }
  }

  async function applyOnce (run: readonly Thunk[], base: Cursor, rules: RunRules, plan: RunPlan | undefined, early: EarlyForwards | undefined): Promise<AppliedRun> {
    // The cache answers only for the run that follows the last one it saw
    // (a replica that skipped ahead, e.g. from a snapshot, or that took on
    // other partitions, starts afresh).
    const holding = plan?.holding.join() ?? ''
    if (cachedUpTo === undefined || base.last !== cachedUpTo || holding !== cachedHolding) latest.clear()
    cachedHolding = holding
    const holds = holdsOf(rules.partitions, plan)
    const overlay = new Map<string, Value | undefined>()
    const keys = keysToRead(run, k => {
      if (!latest.has(k)) return false
      overlay.set(k, latest.get(k))
      return true
    }, plan, holds)
    const ids = run.map(t => t.clientTxnId)
    const ranges = rangesToRead(run, holds)
    const below = (run[0] as Thunk).ts
    const [found, records, inRanges] = await Promise.all([
      keys.length === 0 ? [] : init.store.latestValues(keys, below),
      init.store.txnRecords(ids),
      Promise.all(ranges.map(async r => await init.store.range(r, below)))
    ])
    for (let i = 0; i < keys.length; i++) overlay.set(keys[i] as string, found[i])
    const baseRanges = rangeKeysOf(ranges, inRanges, overlay)
    const verdicts = await checkCallers(run, rules, init.verifyCall, init.readInvite, invites)
    const { batch, applied } = settleRun(init.registry, run, base, overlay, records, rules, evalOpts, verdicts, baseRanges, plan)
    if (early !== undefined && applied.forwards !== undefined && applied.forwards.length > 0) early(applied.forwards)
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

