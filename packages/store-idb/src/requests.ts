import { StoreFailedError, TidelineError } from '@tideline/core'
import { SCAN_CHUNK } from './constants.js'

/*
 * Native IndexedDB requests without a promise each: every request costs
 * Chromium an IPC round trip, so the write path issues them all at once and
 * waits for the last, or not at all (a failure aborts the transaction and
 * `complete` says that all of them landed).
 */

/** `IDBObjectStore.getAllRecords` and `IDBIndex.getAllRecords` (Chromium 141+, not yet in TypeScript's DOM types): keys and values in one request. */
interface RecordsStore {
  getAllRecords?: (options: { query?: IDBKeyRange | null, count?: number | undefined }) => IDBRequest<Array<{ readonly primaryKey: IDBValidKey, readonly value: unknown }>>
}

/** Runs `fn`; IndexedDB failures (quota, a closed connection, I/O) become StoreFailedError, with the cause kept. */
export async function guard<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof TidelineError) throw err
    const e = err as { name?: string, message?: string }
    throw new StoreFailedError(`IndexedDB: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, { cause: err })
  }
}

/**
 * Settles with the transaction: resolves on complete, rejects on error or
 * abort. An abort while the caller still awaits something else is not an
 * unhandled rejection: the caller awaits this promise afterwards, or aborts.
 */
export function completion (tx: IDBTransaction): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => { resolve() }
    tx.onabort = () => { reject(tx.error ?? new DOMException('transaction aborted', 'AbortError')) }
  })
  done.catch(() => {})
  return done
}

/** Aborts `tx` unless it already finished. */
export function abort (tx: IDBTransaction): void {
  try {
    tx.abort()
  } catch {
    // Already finished or aborted by the failing request.
  }
}

export function request<T> (r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => { resolve(r.result) }
    r.onerror = () => { reject(r.error ?? new DOMException('request failed', 'UnknownError')) }
  })
}

/**
 * The results of many requests issued at once, in order, behind one promise
 * (IndexedDB answers a transaction's requests in the order they were made).
 * A failed request rejects it, and aborts the transaction: its error is not
 * prevented.
 */
export function all<T> (requests: ReadonlyArray<IDBRequest<T>>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = []
    let left = requests.length
    if (left === 0) { resolve(out); return }
    requests.forEach((r, i) => {
      r.onsuccess = () => {
        out[i] = r.result
        if (--left === 0) resolve(out)
      }
      r.onerror = () => { reject(r.error ?? new DOMException('request failed', 'UnknownError')) }
    })
  })
}

/**
 * A write-once `add`. One that finds its key taken is a no-op, not a failed
 * transaction, unless the record there fails its check (`holds`): then this
 * one replaces it, in the same transaction (the repair a damaged record
 * waits for). Only an add whose key is taken costs a request more (a `get`).
 */
export function addOnce (store: IDBObjectStore, value: unknown, key: IDBValidKey, holds: (stored: unknown) => boolean): void {
  const added = store.add(value, key)
  added.onerror = event => {
    if (added.error?.name !== 'ConstraintError') return
    event.preventDefault()
    event.stopPropagation()
    const stored = store.get(key)
    stored.onsuccess = () => { if (!holds(stored.result)) store.put(value, key) }
  }
}

/**
 * Up to `count` rows of `store` in `range` (all without it), in key order, with their
 * (primary) keys: one request where the browser has getAllRecords, else two.
 * On an index, the range is over the index's keys.
 */
export async function rows (store: IDBObjectStore | IDBIndex, range: IDBKeyRange | null, count?: number): Promise<Array<[IDBValidKey, unknown]>> {
  const native = (store as (IDBObjectStore | IDBIndex) & RecordsStore).getAllRecords
  if (native !== undefined) {
    const records = await request(native.call(store, { query: range, count }))
    return records.map(r => [r.primaryKey, r.value])
  }
  // In one transaction a getAllKeys and a getAll over the same range return the same rows in the same order (primary keys, on an index).
  const [keys, values] = await Promise.all([request(store.getAllKeys(range, count)), request(store.getAll(range, count))])
  return keys.map((k, i) => [k, values[i]])
}

/**
 * Visits every row of a store in key order (within `range`), `SCAN_CHUNK` at
 * a time: one or two requests per chunk instead of one per row as a cursor
 * would take.
 */
export async function scan (store: IDBObjectStore, visit: (key: IDBValidKey, value: unknown) => void, range: IDBKeyRange | null = null): Promise<void> {
  let next = range
  for (;;) {
    const chunk = await rows(store, next, SCAN_CHUNK)
    for (const [key, value] of chunk) visit(key, value)
    const last = chunk[chunk.length - 1]
    if (chunk.length < SCAN_CHUNK || last === undefined) return
    if (range?.upper === undefined) {
      next = IDBKeyRange.lowerBound(last[0], true)
    } else {
      // A full chunk ending at the upper bound itself leaves nothing after it (and no valid range).
      if (indexedDB.cmp(last[0], range.upper) >= 0) return
      next = IDBKeyRange.bound(last[0], range.upper as IDBValidKey, true, range.upperOpen)
    }
  }
}
