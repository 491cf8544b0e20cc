import { StoreCorruptionError, recordCheck, type Value } from '@tideline/core'
import type { BatchKey, Checked, LatestRecord, LatestRow, MetaRow, Name, TxnRow } from './schema.js'

/*
 * Every record IdbStore writes carries `check`: core's recordCheck over where
 * it belongs (its object store and key: `latest|<key>`,
 * `batches|<coordinator>|<epoch>|<seq>`, `runs|<last ts>`, `txns|<id>`,
 * `meta|<name>`, `base|<page key>`) and the rest of the record. IndexedDB
 * hands back structured data, not bytes, so the check covers the content's
 * canonical text: a changed character or number (a flipped bit), a record cut
 * short (a field or an element gone) or another record's object at this key
 * (a misdirected write, whose check names the other key) fails it. Reads
 * verify every record they answer from; a write computes the check once.
 */

/** The keys IdbStore's records have: strings (keys, ids, names, timestamps), numbers (pages) and [coordinator, epoch, seq]. */
type RecordKey = string | number | BatchKey

/** Where a record belongs, as its check covers it: its object store and its key. */
export function whereOf (store: Name, key: IDBValidKey): string {
  const k = key as RecordKey
  return `${store}|${typeof k === 'object' ? k.join('|') : k}`
}

/** A record's content as its check covers it: every field but the check, in a fixed order. */
function contentOf (store: Name, row: Readonly<Record<string, unknown>>): unknown {
  switch (store) {
    // A deletion has no value (canonical text has no `undefined`); a value torn off reads as a deletion, which the check refuses.
    case 'latest': return row.value === undefined ? [row.ts] : [row.ts, row.value]
    case 'batches': return [row.last, row.batch]
    case 'runs': return [row.first, row.outcomes]
    case 'txns': return row.record
    case 'meta': return row.value
    // Three kinds of `base` records: pages of records, the page index (whose start may be absent: 0), pages of values.
    case 'base':
      if ('records' in row) return [row.records]
      if ('firsts' in row) return [row.firsts, row.start ?? 0]
      return [row.ts, row.keys, row.values]
  }
}

/** `row` with its check, for `key` of `store`. Throws InvalidValueError when the content is not a value. */
export function sealed<T extends object> (store: Name, key: IDBValidKey, row: T): T & Checked {
  return { ...row, check: recordCheck(whereOf(store, key), contentOf(store, row as Readonly<Record<string, unknown>>)) }
}

/** Whether a record read at `key` of `store` passes its check (anything that is not a checked record fails). */
export function intact (store: Name, key: IDBValidKey, row: unknown): boolean {
  if (typeof row !== 'object' || row === null) return false
  const check = (row as Partial<Checked>).check
  if (typeof check !== 'number') return false
  try {
    return recordCheck(whereOf(store, key), contentOf(store, row as Readonly<Record<string, unknown>>)) === check
  } catch {
    // Content that is no longer a value at all (a field gone inside a list, a type changed) fails as well.
    return false
  }
}

/** The error a read that met a damaged record throws, naming it (`what`: "value \"k\"", "batch …"). */
export function corruption (what: string): Error {
  return new StoreCorruptionError(`IdbStore ${what} failed its check (damaged in storage)`)
}

/** A `latest` record checked and without its check, or StoreCorruptionError naming the key. */
export function latestOf (key: string, row: unknown): LatestRecord {
  if (!intact('latest', key, row)) throw corruption(`value ${JSON.stringify(key)}`)
  const r = row as LatestRow
  return { ts: r.ts, value: r.value }
}

/** An exactly-once record checked, or StoreCorruptionError naming its id. */
export function recordOf (id: string, row: unknown): string {
  if (!intact('txns', id, row)) throw corruption(`exactly-once record ${JSON.stringify(id)}`)
  return (row as TxnRow).record
}

/** A meta record's value checked, or StoreCorruptionError naming it. */
export function metaOf (name: string, row: unknown): Value {
  if (!intact('meta', name, row)) throw corruption(`meta record ${JSON.stringify(name)}`)
  return (row as MetaRow).value
}

/** A `latest` record for `key`'s newest version. */
export function latestRow (key: string, version: LatestRecord): LatestRow {
  return sealed('latest', key, { ts: version.ts, value: version.value })
}

/** Names for a message: the first few, JSON-quoted. */
export function names (keys: readonly string[]): string {
  const shown = keys.slice(0, 5).map(k => JSON.stringify(k)).join(', ')
  return keys.length > 5 ? `${shown} and ${keys.length - 5} more` : shown
}
