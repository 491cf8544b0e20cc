import { checkCallers, type AppliedRun, type RunRules } from './apply.js'
import { holdsOf, keysToRead, rangeKeysOf, rangesToRead, settleRun, type RunPlan } from './settle.js'
import type { MemoryStore } from './memory-store.js'
import type { ProcedureRegistry } from './procedures.js'
import { recoveryMeta, recoveryReads, type Persisted } from './protocol/recover.js'
import type { Cursor, GroupConfig, Thunk } from './types.js'
import type { Value } from './value.js'
import type { Effect, Input } from './protocol/effects.js'
import { forwardedOf } from './read-values.js'

/**
 * The store effects that need more than one call, carried out against a
 * MemoryStore's synchronous face: for drivers that step a peer without
 * awaiting (the simulator, interaction scripts).
 */

/** What recovery reads from `store`, read synchronously. */
export function loadPersistedSync (store: MemoryStore, initial: GroupConfig): Persisted {
  const reads = recoveryReads(initial)
  let next = reads.next()
  while (next.done !== true) {
    const read = next.value
    next = reads.next('meta' in read ? recoveryMeta(read.meta, () => store.getMetaSync(read.meta)) : store.batchRangeSync(read.batches.coordinator, read.batches.epoch, read.batches.from, Infinity))
  }
  return next.value
}

/** Evaluates and settles a run as the in-process applier does, synchronously (no value cache). */
export function applyRunSync (store: MemoryStore, registry: ProcedureRegistry, run: readonly Thunk[], base: Cursor, rules: RunRules, verifyCall?: (peer: string, statement: Uint8Array, sig: Uint8Array) => boolean, plan?: RunPlan): AppliedRun {
  const { batch, applied } = settleRunSync(store, registry, run, base, rules, verifyCall, plan)
  store.writeSync(batch)
  return applied
}

/** What applyRunSync would write and answer, without writing it (the simulator writes it later, as a store would). */
export function settleRunSync (store: MemoryStore, registry: ProcedureRegistry, run: readonly Thunk[], base: Cursor, rules: RunRules, verifyCall?: (peer: string, statement: Uint8Array, sig: Uint8Array) => boolean, plan?: RunPlan): ReturnType<typeof settleRun> {
  const overlay = new Map<string, Value | undefined>()
  const holds = holdsOf(rules.partitions, plan)
  const keys = keysToRead(run, undefined, plan, holds)
  const found = keys.length === 0 ? [] : store.latestValuesSync(keys, (run[0] as Thunk).ts)
  for (let i = 0; i < keys.length; i++) overlay.set(keys[i] as string, found[i])
  const ranges = rangesToRead(run, holds)
  const baseRanges = rangeKeysOf(ranges, ranges.map(r => store.rangeSync(r, (run[0] as Thunk).ts)), overlay)
  const verdicts = checkCallers(run, rules, verifyCall)
  if (verdicts instanceof Promise) throw new TypeError('applyRunSync needs a synchronous caller check')
  return settleRun(registry, run, base, overlay, store.txnRecordsSync(run.map(t => t.clientTxnId)), rules, {}, verdicts, baseRanges, plan)
}

/** Carries out a `read-forward` effect against a MemoryStore, synchronously. */
export function forwardReadSync (store: MemoryStore, e: Extract<Effect, { t: 'read-forward' }>): Input {
  try {
    return { t: 'forward-read', to: e.to, fwd: forwardedOf(e, e.keys.length === 0 ? [] : store.latestValuesSync(e.keys, e.ts), e.ranges.map(r => store.rangeSync(r, e.ts))) }
  } catch {
    return { t: 'forward-read', to: e.to, fwd: undefined }
  }
}
