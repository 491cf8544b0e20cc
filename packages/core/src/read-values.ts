import { InvalidArgumentError } from './errors.js'
import { keyRangeOf, rangeLimit } from './key-range.js'
import type { Effect, Input } from './protocol/effects.js'
import type { RangeRead } from './protocol/read-state.js'
import { damagedInput } from './protocol/damage.js'
import { errorInfo } from './protocol/emit.js'
import { readResult } from './protocol/reads.js'
import type { Store } from './store.js'
import type { Timestamp } from './timestamp.js'
import type { ReadResult } from './types.js'
import type { ForwardedReads } from './run-rules.js'
import type { Value } from './value.js'

/** A range read's entries as a read's result: `values` by key, and `entries` in the range's order. */
export function rangeResult (entries: Array<[string, Value]>, ts: Timestamp): ReadResult {
  return { ts, values: Object.fromEntries(entries), entries }
}

/**
 * Carries out a `read-values` effect on `store` and answers the next input:
 * the values read; a read too old for the versions the store still holds
 * fails alone (`values-refused`); a damaged value heals the replica; any
 * other store error stops the peer.
 */
export async function readValues (store: Store, e: Extract<Effect, { t: 'read-values' }>): Promise<Input> {
  try {
    const result = e.range === undefined
      ? readResult(e.keys, await store.latestValues(e.keys, e.at), e.at)
      : rangeResult(await store.range(e.range.range, e.at, e.range), e.at)
    return { t: 'values-read', read: e.read, result }
  } catch (err) {
    if ((err as Error).name !== 'SnapshotTooOldError') return damagedInput(err, { read: e.read })
    return { t: 'values-refused', read: e.read, error: errorInfo(err) }
  }
}

/** Whether a read names its keys (else it is a range read). */
export const isKeyList = (what: readonly string[] | RangeRead): what is readonly string[] => Array.isArray(what)

/** Checks a range read as an app gave it (InvalidArgumentError naming what is wrong), keeping only what it asks for. */
export function checkRangeRead (r: RangeRead): RangeRead {
  if (typeof r !== 'object' || r === null) throw new InvalidArgumentError('a range read is { range, limit?, reverse? }')
  const range = keyRangeOf(r.range)
  if (r.reverse !== undefined && typeof r.reverse !== 'boolean') throw new InvalidArgumentError('a range read\'s reverse must be a boolean')
  return { range, ...(r.limit === undefined ? {} : { limit: rangeLimit(r) }), ...(r.reverse === true ? { reverse: true } : {}) }
}

/** Carries out a `read-forward` effect (partitions.ts): a thunk's reads held here, as of just below it. */
export async function forwardRead (store: Store, e: Extract<Effect, { t: 'read-forward' }>): Promise<Input> {
  try {
    const found = e.keys.length === 0 ? [] : await store.latestValues(e.keys, e.ts)
    const inRanges = await Promise.all(e.ranges.map(async r => await store.range(r, e.ts)))
    return { t: 'forward-read', to: e.to, fwd: forwardedOf(e, found, inRanges) }
  } catch {
    // Too old (collected), or unreadable: the asker asks another replica.
    return { t: 'forward-read', to: e.to, fwd: undefined }
  }
}

/** What a `read-forward` found, as forwarded reads. */
export function forwardedOf (e: Extract<Effect, { t: 'read-forward' }>, found: ReadonlyArray<Value | undefined>, inRanges: ReadonlyArray<ReadonlyArray<readonly [string, Value]>>): ForwardedReads {
  const values: Array<readonly [string, Value]> = []
  e.keys.forEach((k, i) => { const v = found[i]; if (v !== undefined) values.push([k, v]) })
  const ranges = e.ranges.map((r, i): readonly [string, string | null, readonly string[]] => {
    const entries = inRanges[i] ?? []
    for (const entry of entries) values.push(entry)
    return [r.start, r.end ?? null, entries.map(([k]) => k)]
  })
  return { ts: e.ts, parts: e.parts, values, ranges }
}
