import type { GcResult, Timestamp } from '@tideline/core'
import type { Pages } from './base.js'
import { intact } from './checks.js'
import { rows, scan } from './requests.js'
import type { BatchKey, LatestRow, RunRecord, TxnRow } from './schema.js'

/** Where a GC pass under way stands in the stores it scans (a bounded step stops after `limit` rows of each). */
export interface GcPass {
  latest?: IDBValidKey | undefined
  txns?: IDBValidKey | undefined
}

/**
 * Up to `limit` rows of `store` after `from` (from the start when undefined);
 * returns where the next step starts (undefined: this pass reached the end).
 */
async function step (store: IDBObjectStore, from: IDBValidKey | undefined, limit: number, visit: (key: IDBValidKey, value: unknown) => void): Promise<{ next: IDBValidKey | undefined, more: boolean }> {
  const range = from === undefined ? null : IDBKeyRange.lowerBound(from, true)
  if (limit === Infinity) {
    await scan(store, visit, range)
    return { next: undefined, more: false }
  }
  const got = await rows(store, range, limit)
  for (const [key, value] of got) visit(key, value)
  const last = got[got.length - 1]
  return got.length < limit || last === undefined ? { next: undefined, more: false } : { next: last[0], more: true }
}

/**
 * Deletes, in one readwrite transaction, what no reader at or above `horizon`
 * needs on disk: deletions that are their key's newest version below it,
 * batches wholly below it, run records ending below it, and exactly-once
 * records older than `records`; at most `limit` rows of each kind, `pass`
 * telling where the last step stopped (and updated). Versions held in
 * memory are the caller's (`VersionWindow.forget`), once this has landed.
 *
 * A record that fails its check is dropped only when its key alone says it
 * would go (run records, keyed by their last timestamp); any other stays,
 * for the read that meets it to report (a batch is fetched and written
 * again, values and exactly-once records come back with a snapshot).
 */
export async function collect (tx: IDBTransaction, horizon: Timestamp, records: Timestamp | undefined, limit: number, pass: GcPass, pages: Pages): Promise<GcResult> {
  const below = IDBKeyRange.upperBound(horizon, true)
  const count = limit === Infinity ? undefined : limit
  let more = false

  // A deletion that is a key's newest version below the horizon: no reader at or above it needs the key.
  // Not one that shadows a key of the last snapshot's pages: that one would come back.
  let versionsRemoved = 0
  const latest = tx.objectStore('latest')
  const deletions: string[] = []
  const l = await step(latest, pass.latest, limit, (key, record) => {
    const r = record as LatestRow
    if (r.value === undefined && r.ts < horizon && intact('latest', key, r)) deletions.push(key as string)
  })
  // A key whose page cannot be read may be one a deletion hides: kept.
  const unreadable = new Set<string>()
  const shadowing = pages.empty ? undefined : await pages.lookup(tx.objectStore('base'), deletions, unreadable)
  for (const key of deletions) {
    if (shadowing?.has(key) === true || unreadable.has(key)) continue
    latest.delete(key)
    versionsRemoved++
  }
  pass.latest = l.next
  more ||= l.more

  // Batches whose last thunk lies below the horizon go, found by that index (the oldest `limit` of them),
  // read whole: the index has a damaged record's `last`, which may be wrong.
  const batches = tx.objectStore('batches')
  const found = await rows(batches.index('byLast'), below, count)
  const gone = found.filter(([key, record]) => intact('batches', key, record)).map(([key]) => key as BatchKey)
  for (const range of keyRuns(gone)) batches.delete(range)
  more ||= found.length === count

  // Run records ending below the horizon hold outcomes below it only; counted, then deleted (the oldest `limit`).
  // A damaged one ends below it too (its key says so): deleted, its outcomes not counted.
  let outcomesRemoved = 0
  const runs = tx.objectStore('runs')
  const counted = (ts: IDBValidKey, run: unknown): number => (intact('runs', ts, run) ? (run as RunRecord).outcomes.length : 0)
  if (count === undefined) {
    let ended = 0
    await scan(runs, (ts, run) => { outcomesRemoved += counted(ts, run); ended++ }, below)
    if (ended > 0) runs.delete(below)
  } else {
    const ended = await rows(runs, below, count)
    for (const [ts, run] of ended) outcomesRemoved += counted(ts, run)
    const lastRun = ended[ended.length - 1]
    if (lastRun !== undefined) runs.delete(IDBKeyRange.upperBound(lastRun[0]))
    more ||= ended.length === count
  }

  let recordsRemoved = 0
  if (records !== undefined) {
    const txns = tx.objectStore('txns')
    const x = await step(txns, pass.txns, limit, (id, row) => {
      if (intact('txns', id, row) && (row as TxnRow).record.slice(0, 36) < records) {
        txns.delete(id)
        recordsRemoved++
      }
    })
    pass.txns = x.next
    more ||= x.more
  }
  return { versionsRemoved, batchesRemoved: gone.length, outcomesRemoved, recordsRemoved, more }
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
