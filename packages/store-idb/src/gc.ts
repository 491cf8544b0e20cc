import type { GcResult, Timestamp } from '@tideline/core'
import { request, scan } from './requests.js'
import type { BatchKey, LatestRecord, RunRecord } from './schema.js'

/**
 * Deletes, in one readwrite transaction, what no reader at or above `horizon`
 * needs on disk: deletions that are their key's newest version below it,
 * batches wholly below it, run records ending below it, and exactly-once
 * records older than `records`. Versions held in memory are the caller's
 * (`VersionWindow.forget`), once this has landed.
 */
export async function collect (tx: IDBTransaction, horizon: Timestamp, records: Timestamp | undefined): Promise<GcResult> {
  const below = IDBKeyRange.upperBound(horizon, true)

  // A deletion that is a key's newest version below the horizon: no reader at or above it needs the key.
  let versionsRemoved = 0
  const latest = tx.objectStore('latest')
  await scan(latest, (key, record) => {
    const r = record as LatestRecord
    if (r.value !== undefined || r.ts >= horizon) return
    latest.delete(key)
    versionsRemoved++
  })

  // Batches whose last thunk lies below the horizon go, found by that index.
  const batches = tx.objectStore('batches')
  const gone = await request(batches.index('byLast').getAllKeys(below)) as BatchKey[]
  for (const range of keyRuns(gone)) batches.delete(range)

  // Run records ending below the horizon hold outcomes below it only; counted, then one range delete.
  let outcomesRemoved = 0
  const runs = tx.objectStore('runs')
  await scan(runs, (_ts, run) => { outcomesRemoved += (run as RunRecord).outcomes.length }, below)
  if (outcomesRemoved > 0) runs.delete(below)

  let recordsRemoved = 0
  if (records !== undefined) {
    const txns = tx.objectStore('txns')
    await scan(txns, (id, record) => {
      if ((record as string).slice(0, 36) < records) {
        txns.delete(id)
        recordsRemoved++
      }
    })
  }
  return { versionsRemoved, batchesRemoved: gone.length, outcomesRemoved, recordsRemoved }
}

/**
 * Batch keys as key ranges, one per run of consecutive seqs in one
 * coordinator's epoch: no other key lies between [c, e, s] and [c, e, s + 1]
 * (seqs are integers), so deleting the run's range deletes exactly its keys.
 * A GC usually removes a prefix of each sequence: one delete each.
 */
function keyRuns (keys: readonly BatchKey[]): IDBKeyRange[] {
  const sorted = [...keys].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1] || a[2] - b[2]))
  const out: IDBKeyRange[] = []
  let first: BatchKey | undefined
  let last: BatchKey | undefined
  for (const k of sorted) {
    if (last !== undefined && k[0] === last[0] && k[1] === last[1] && k[2] === last[2] + 1) {
      last = k
      continue
    }
    if (first !== undefined && last !== undefined) out.push(IDBKeyRange.bound(first, last))
    first = k
    last = k
  }
  if (first !== undefined && last !== undefined) out.push(IDBKeyRange.bound(first, last))
  return out
}
