import type { Outcome, Timestamp } from '@tideline/core'
import { corruption, intact } from './checks.js'
import { MAX_RUN_SCAN } from './constants.js'
import { rows } from './requests.js'
import type { RunRecord } from './schema.js'

/**
 * The recorded outcomes of `wanted` (ascending, distinct), from the `runs`
 * store: a timestamp's run ends at or after it, but a late run may end after
 * others that started later, so the lookup walks forward from the lowest
 * wanted timestamp until each is found or MAX_RUN_SCAN runs past the highest
 * have been looked at. Chunks grow from one record: a single lookup, what
 * `outcome` does, is nearly always answered by the first run.
 *
 * Records come with their keys (one request where the browser has
 * getAllRecords), which their checks cover. A damaged run record may hold any
 * timestamp at or below its key: a wanted one not found elsewhere that it
 * could hold throws StoreCorruptionError.
 */
export async function outcomesIn (runs: IDBObjectStore, wanted: readonly Timestamp[]): Promise<Map<Timestamp, Outcome>> {
  const found = new Map<Timestamp, Outcome>()
  const lo = wanted[0]
  const hi = wanted[wanted.length - 1]
  if (lo === undefined || hi === undefined) return found
  const want = new Set(wanted)
  const damaged: Timestamp[] = []
  let range = IDBKeyRange.lowerBound(lo)
  let count = wanted.length === 1 ? 1 : 16
  let past = 0
  for (;;) {
    const chunk = await rows(runs, range, count)
    for (const [key, row] of chunk) {
      const end = key as Timestamp
      if (end > hi) past++
      if (!intact('runs', end, row)) {
        damaged.push(end)
        continue
      }
      const run = row as RunRecord
      if (run.first > hi) continue
      for (const [ts, outcome] of run.outcomes) if (want.has(ts) && !found.has(ts)) found.set(ts, outcome)
    }
    const last = chunk[chunk.length - 1]
    if (found.size === want.size) return found
    if (chunk.length < count || last === undefined || past >= MAX_RUN_SCAN) break
    range = IDBKeyRange.lowerBound(last[0], true)
    count = Math.min(count * 4, MAX_RUN_SCAN)
  }
  for (const ts of wanted) {
    const end = found.has(ts) ? undefined : damaged.find(d => d >= ts)
    if (end !== undefined) throw corruption(`run record ending ${end} (read for the outcome of ${ts})`)
  }
  return found
}
