import { TS_ZERO, cloneValue } from '@tideline/core'
import type { Outcome, Settlement, StoreBatch, Timestamp } from '@tideline/core'
import { outcomesIn } from './runs.js'
import type { Pages } from './base.js'
import { intact, latestRow, sealed } from './checks.js'
import type { NewestReader } from './newest.js'
import { addOnce } from './requests.js'
import type { BatchKey, BatchRecord, LatestRecord, MetaRow, RunRecord, TxnRow } from './schema.js'

/** A version a write replaces, for the window: [key, version, the timestamp of the write that replaced it]. */
export type Replaced = [key: string, version: LatestRecord, by: Timestamp]

/**
 * Issues one batch's writes on a native readwrite transaction over every
 * store. Replicated batches and exactly-once records are write-once `add`s
 * (one whose stored copy fails its check is replaced). Every record is put
 * with its check (checks.ts); content that is not a value throws, and the
 * caller aborts the transaction.
 *
 * The first settlement of a timestamp decides it, outcome and versions; a
 * later one changes nothing (as MemoryStore). Settlements above `checkUpTo`
 * (the newest timestamp any earlier write settles) are first by
 * construction; only the others are looked up among the run records. Each
 * written key's newest version is read in the same transaction (NewestReader),
 * so that the version a settlement replaces can be handed to the window and a
 * late write (below the newest) is told apart. Then one put per key written
 * (its newest version) and one run record.
 *
 * Requests are not awaited one by one: the reads go out together and are
 * awaited together, the writes not at all (a failure aborts the transaction,
 * and `complete` says all of them landed). Returns the versions replaced.
 */
export async function apply (tx: IDBTransaction, batch: StoreBatch, checkUpTo: Timestamp, reader: NewestReader, pages: Pages): Promise<Replaced[]> {
  const batchRows = (batch.batches ?? []).map(b => {
    const key: BatchKey = [b.coordinator, b.epoch, b.seq]
    // A batch has at least one thunk; one without any would lie below every horizon.
    return [key, sealed('batches', key, { last: b.thunks[b.thunks.length - 1]?.ts ?? TS_ZERO, batch: b }) satisfies BatchRecord] as const
  })
  const metaRows = (batch.meta ?? []).map(([name, value]) => [name, sealed('meta', name, { value }) satisfies MetaRow] as const)
  const txnRows = (batch.txns ?? []).map(([id, record]) => [id, sealed('txns', id, { record }) satisfies TxnRow] as const)
  const batches = tx.objectStore('batches')
  for (const [key, row] of batchRows) addOnce(batches, row, key, stored => intact('batches', key, stored))
  const meta = tx.objectStore('meta')
  for (const [name, row] of metaRows) meta.put(row, name)
  const txns = tx.objectStore('txns')
  for (const [id, row] of txnRows) addOnce(txns, row, id, stored => intact('txns', id, stored))
  const settle = batch.settle ?? []
  if (settle.length === 0) return []

  const latest = tx.objectStore('latest')
  const runs = tx.objectStore('runs')
  const check = new Set<Timestamp>()
  const written = new Set<string>()
  for (const s of settle) {
    if (s.ts <= checkUpTo) check.add(s.ts)
    for (const [key] of s.writes) written.add(key)
  }
  const keys = [...written].sort(byString)
  const [known, newest] = await Promise.all([
    check.size === 0 ? undefined : outcomesIn(runs, [...check].sort(byString)),
    keys.length === 0 ? new Map<string, LatestRecord>() : reader.read(latest, keys)
  ])
  // A key without a `latest` record may have one in the last snapshot's pages.
  if (!pages.empty) {
    const paged = await pages.lookup(tx.objectStore('base'), keys.filter(k => !newest.has(k)))
    for (const [k, v] of paged) newest.set(k, v)
  }

  const settled = new Set<Timestamp>()
  const outcomes: Array<[Timestamp, Outcome]> = []
  const replaced: Replaced[] = []
  const changed = new Set<string>()
  for (const s of settle) {
    if (settled.has(s.ts) || known?.has(s.ts) === true) continue
    settled.add(s.ts)
    outcomes.push([s.ts, s.outcome])
    settleOne(s, newest, replaced, changed)
  }
  // In key order: the backing store inserts neighbours together instead of all over the key space.
  for (const key of keys) if (changed.has(key)) latest.put(latestRow(key, newest.get(key) as LatestRecord), key)
  if (outcomes.length > 0) {
    outcomes.sort((x, y) => byString(x[0], y[0]))
    const end = (outcomes[outcomes.length - 1] as [Timestamp, Outcome])[0]
    runs.put(sealed('runs', end, { first: (outcomes[0] as [Timestamp, Outcome])[0], outcomes }) satisfies RunRecord, end)
  }
  return replaced
}

/** One first settlement's writes against the newest versions: each becomes the newest, or (late) only history. */
function settleOne (s: Settlement, newest: Map<string, LatestRecord>, replaced: Replaced[], changed: Set<string>): void {
  for (const [key, value] of s.writes) {
    const before = newest.get(key)
    if (before !== undefined && before.ts >= s.ts) {
      // A late write (below the newest): for reads below the newest only. Copied: the caller keeps its value.
      replaced.push([key, { ts: s.ts, value: cloneValue(value) }, before.ts])
      continue
    }
    // Read from disk, the replaced version is this store's own; written earlier in this batch, it is the caller's.
    if (before !== undefined) replaced.push([key, changed.has(key) ? { ts: before.ts, value: cloneValue(before.value) } : before, s.ts])
    newest.set(key, { ts: s.ts, value })
    changed.add(key)
  }
}

function byString (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
