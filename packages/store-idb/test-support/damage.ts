import { openDB, type IDBPDatabase } from 'idb'
import type { DamageKind, DamageTarget } from '@tideline/core'

/*
 * Storage faults on an IdbStore database, made with plain IndexedDB calls on
 * a second connection (no version change, so the store's own connection
 * stays open): the record's stored object is changed and put back under its
 * key, its check left as it was. The store has to find the damage by itself.
 */

type Row = Record<string, unknown>
/** Where a target lives: its object store and key, and for a value held in a snapshot page, which entry of it. */
interface Place {
  readonly store: string
  readonly key: IDBValidKey
  readonly entry?: number
}

/**
 * Damages `target` in database `name` as `kind` would. Answers whether it
 * was a snapshot page: the store keeps pages it has read in memory (checked
 * when read), so the caller reopens it to read the damaged copy.
 */
export async function damageIdbRecord (name: string, target: DamageTarget, kind: DamageKind): Promise<{ readonly page: boolean }> {
  const db = await openDB(name)
  try {
    const place = await locate(db, target)
    const tx = db.transaction(place.store, 'readwrite')
    const store = tx.objectStore(place.store)
    const stored = await store.get(place.key) as Row
    let damaged: unknown
    if (kind === 'misdirected') {
      damaged = await another(store, place, target)
    } else {
      damaged = structuredClone(stored)
      if (kind === 'bit-flip') flipIn(damaged as Row, place)
      else tear(damaged as Row, place)
    }
    await store.put(damaged, place.key)
    await tx.done
    return { page: place.entry !== undefined }
  } finally {
    db.close()
  }
}

/** Where the target's record is; a value without a `latest` record is looked for in the snapshot pages. */
async function locate (db: IDBPDatabase, target: DamageTarget): Promise<Place> {
  let place: Place
  if ('batch' in target) place = { store: 'batches', key: [target.batch.coordinator, target.batch.epoch, target.batch.seq] }
  else if ('record' in target) place = { store: 'txns', key: target.record }
  else if ('meta' in target) place = { store: 'meta', key: target.meta }
  else place = { store: 'latest', key: target.value }
  if (await db.getKey(place.store, place.key) !== undefined) return place
  if ('value' in target) {
    const pages = await db.getAllKeys('base')
    for (const key of pages) {
      const page = await db.get('base', key) as Row
      const entry = Array.isArray(page.keys) ? (page.keys as unknown[]).indexOf(target.value) : -1
      if (entry >= 0) return { store: 'base', key, entry }
    }
  }
  throw new Error(`no record to damage for ${JSON.stringify(target)}`)
}

/** The fields of a record that hold its content (all but its check), in their order. */
function contentFields (row: Row): string[] {
  return Object.keys(row).filter(k => k !== 'check')
}

/** Changes one character, number or byte (the last one in the record's content, or in the value's entry of a page). */
function flipIn (row: Row, place: Place): void {
  const values = row.values as unknown[] | undefined
  if (place.entry !== undefined && values !== undefined) {
    if (!flipLast(values, place.entry)) throw new Error('nothing to flip in the page entry')
    return
  }
  const fields = contentFields(row)
  for (let i = fields.length - 1; i >= 0; i--) if (flipLast(row, fields[i] as string)) return
  throw new Error('nothing to flip in the record')
}

/** Flips the last leaf under `holder[at]`; false when it has none (an empty string, list or object). */
function flipLast (holder: Row | unknown[], at: string | number): boolean {
  const v = (holder as Row)[at]
  if (typeof v === 'string') {
    if (v.length === 0) return false
    ;(holder as Row)[at] = v.slice(0, -1) + String.fromCharCode(v.charCodeAt(v.length - 1) ^ 1)
    return true
  }
  if (typeof v === 'number') {
    ;(holder as Row)[at] = Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? v ^ 1 : v + 1
    return true
  }
  if (typeof v === 'boolean') {
    ;(holder as Row)[at] = !v
    return true
  }
  if (v instanceof Uint8Array) {
    if (v.length === 0) return false
    v[v.length - 1] = (v[v.length - 1] as number) ^ 1
    return true
  }
  if (Array.isArray(v)) {
    for (let i = v.length - 1; i >= 0; i--) if (flipLast(v, i)) return true
    return false
  }
  if (typeof v === 'object' && v !== null) {
    const keys = Object.keys(v)
    for (let i = keys.length - 1; i >= 0; i--) if (flipLast(v as Row, keys[i] as string)) return true
  }
  return false
}

/**
 * Cuts the record short, as a write that did not reach the disk whole: a
 * batch loses its last thunk (or its last thunk its last field), a value or
 * exactly-once record its trailing part (half a string, a list's last
 * element, an object's last field, else the value itself; a deletion half its
 * timestamp), a page every entry from the value's on.
 */
function tear (row: Row, place: Place): void {
  if (place.entry !== undefined) {
    row.values = (row.values as unknown[]).slice(0, place.entry)
    return
  }
  switch (place.store) {
    case 'batches': {
      const batch = row.batch as { thunks: unknown[] }
      if (batch.thunks.length > 1) batch.thunks = batch.thunks.slice(0, -1)
      else cutShort(batch.thunks, 0)
      return
    }
    case 'txns': return cutShort(row, 'record')
    // A deletion has no value to cut: its timestamp is.
    case 'latest': return cutShort(row, row.value === undefined ? 'ts' : 'value')
    default: return cutShort(row, 'value')
  }
}

/** Drops the trailing part of `holder[at]`, or the field itself when it has no parts. */
function cutShort (holder: Row | unknown[], at: string | number): void {
  const v = (holder as Row)[at]
  if (typeof v === 'string' && v.length > 1) (holder as Row)[at] = v.slice(0, v.length >> 1)
  else if (Array.isArray(v) && v.length > 0) (holder as Row)[at] = v.slice(0, -1)
  else if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && Object.keys(v).length > 0) {
    const keys = Object.keys(v)
    delete (v as Row)[keys[keys.length - 1] as string]
  } else if (Array.isArray(holder)) holder.splice(at as number, 1)
  else delete holder[at]
}

/**
 * Another record's stored object (with its own check), as a write that
 * landed at this record's key would leave it: for a batch, another seq of the
 * same coordinator and epoch (seq 1's, for any other seq), else any other
 * key of the object store.
 */
async function another (store: { getAllKeys: (query?: IDBKeyRange | null) => Promise<IDBValidKey[]>, get: (key: IDBValidKey) => Promise<unknown> }, place: Place, target: DamageTarget): Promise<unknown> {
  const range = 'batch' in target ? IDBKeyRange.bound([target.batch.coordinator, target.batch.epoch, -Infinity], [target.batch.coordinator, target.batch.epoch, Infinity]) : null
  const keys = await store.getAllKeys(range)
  const other = keys.find(k => indexedDB.cmp(k, place.key) !== 0)
  if (other === undefined) throw new Error(`no other record to misdirect onto ${JSON.stringify(target)}`)
  return store.get(other)
}
