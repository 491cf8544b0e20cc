import type { Outcome, Timestamp } from '@tideline/core'
import { MAX_RUN_SCAN } from './constants.js'
import { request } from './requests.js'
import type { RunRecord } from './schema.js'

/** A run record's key: its last (highest) timestamp. */
export function runKeyOf (run: RunRecord): Timestamp {
  return (run.outcomes[run.outcomes.length - 1] as readonly [Timestamp, Outcome])[0]
}

/**
 * The recorded outcomes of `wanted` (ascending, distinct), from the `runs`
 * store: a timestamp's run ends at or after it, but a late run may end after
 * others that started later, so the lookup walks forward from the lowest
 * wanted timestamp until each is found or MAX_RUN_SCAN runs past the highest
 * have been looked at. Chunks grow from one record: a single lookup, what
 * `outcome` does, is nearly always answered by the first run.
 */
export async function outcomesIn (runs: IDBObjectStore, wanted: readonly Timestamp[]): Promise<Map<Timestamp, Outcome>> {
  const found = new Map<Timestamp, Outcome>()
  const lo = wanted[0]
  const hi = wanted[wanted.length - 1]
  if (lo === undefined || hi === undefined) return found
  const want = new Set(wanted)
  let range = IDBKeyRange.lowerBound(lo)
  let count = wanted.length === 1 ? 1 : 16
  let past = 0
  for (;;) {
    const chunk = await request(runs.getAll(range, count) as IDBRequest<RunRecord[]>)
    for (const run of chunk) {
      if (runKeyOf(run) > hi) past++
      if (run.first > hi) continue
      for (const [ts, outcome] of run.outcomes) if (want.has(ts) && !found.has(ts)) found.set(ts, outcome)
    }
    const last = chunk[chunk.length - 1]
    if (found.size === want.size || chunk.length < count || last === undefined || past >= MAX_RUN_SCAN) return found
    range = IDBKeyRange.lowerBound(runKeyOf(last), true)
    count = Math.min(count * 4, MAX_RUN_SCAN)
  }
}
