import { openDB, unwrap, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb'
import { StoreFailedError, StoreFormatError, TS_ZERO, TidelineError, checkBatch, checkValue } from '@tideline/core'
import type { Batch, GcResult, Outcome, Settlement, Store, StoreBatch, StoreSnapshot, Timestamp, Value, Version } from '@tideline/core'

/*
 * Layout: one IndexedDB database per replica, five object stores.
 *
 *   versions  [key, ts]                → value, or undefined (a deletion)
 *   batches   [coordinator, epoch, seq] → { last, batch }; index byLast (last = its last thunk's ts)
 *   outcomes  ts                       → outcome of a settled thunk
 *   txns      clientTxnId              → exactly-once record
 *   meta      name                     → value
 *
 * Array keys compare element by element, numbers numerically and strings by
 * UTF-16 code unit, as JS strings do: "newest version of k below ts" is one
 * step of a reverse cursor over [k] … [k, ts), a range of one coordinator's
 * batches is one getAll over [c, e, from] … [c, e, to], and timestamps sort
 * as their text.
 *
 * Each IndexedDB request costs Chromium an IPC round trip (about 0.1 ms each
 * on the 2-core machine the benchmarks run on), so the write path issues as
 * few as it can: one per batch, per written version, per outcome and per
 * record, plus one range probe per settlement batch; no per-request promises.
 */

type VersionKey = [key: string, ts: Timestamp]
type BatchKey = [coordinator: string, epoch: number, seq: number]

/** A batch's record: the batch as written, and its last thunk's timestamp, which GC finds it by. */
interface BatchRecord {
  readonly last: Timestamp
  readonly batch: Batch
}

interface Schema extends DBSchema {
  versions: { key: VersionKey, value: Value | undefined }
  batches: { key: BatchKey, value: BatchRecord, indexes: { byLast: Timestamp } }
  outcomes: { key: Timestamp, value: Outcome }
  txns: { key: string, value: string }
  meta: { key: string, value: Value }
}

type Name = StoreNames<Schema>
type Db = IDBPDatabase<Schema>
type ReadTx = IDBPTransaction<Schema, Name[], 'readonly' | 'readwrite'>

/**
 * The IndexedDB database version, which is the store format. 1 kept one
 * record per thunk (with an index by sequence) and recorded outcomes only
 * for held thunks; 2 keeps one record per batch. A database of another
 * version is refused with StoreFormatError, never upgraded in place (see
 * `IdbStore.open`).
 */
const SCHEMA_VERSION = 2
const ALL: Name[] = ['versions', 'batches', 'outcomes', 'txns', 'meta']
/** Rows fetched per getAll during scans: big enough to amortise the round trip, small enough to bound memory. */
const SCAN_CHUNK = 2000

export interface IdbStoreInit {
  /** Name of the IndexedDB database; created when missing. One replica per database. */
  readonly name: string
}

/**
 * A Store on IndexedDB, for browsers (main thread or a Web Worker).
 *
 * Every `write` is one readwrite transaction over all five object stores, so a
 * batch lands whole or not at all and writes apply in call order (IndexedDB
 * runs readwrite transactions with overlapping scopes one after another).
 * Durability follows the batch: `strict` batches commit with
 * `durability: 'strict'` (flushed to disk before `complete`, which acks rely
 * on), `relaxed` ones with `durability: 'relaxed'` (Chromium's default since
 * 121: committed for every later reader, but a crash of the browser may lose
 * the tail; the contract allows that because settlements are recomputed from
 * the batches). Reads use one readonly transaction each, so a batch is seen whole.
 *
 * Each replicated batch is one record keyed by [coordinator, epoch, seq], so
 * `batchRange` is one getAll; an index on its last thunk's timestamp tells GC
 * which batches lie wholly below the horizon.
 *
 * The database version is the store format (`SCHEMA_VERSION`). Opening a
 * database written by another Tideline version fails with StoreFormatError
 * and leaves it untouched: version 1 databases (per-thunk records) cannot be
 * read by this protocol, and wiping them in an upgrade would silently lose
 * what the replica promised, acknowledged and decided. Such a database has to
 * be deleted (`indexedDB.deleteDatabase`) or migrated by its owner first.
 */
export class IdbStore implements Store {
  private readonly db: Db
  private failure: string | undefined

  private constructor (db: Db) {
    this.db = db
  }

  static async open (init: IdbStoreInit): Promise<IdbStore> {
    // Set once the connection is open; the callbacks below only fire after that.
    const opened: { store?: IdbStore } = {}
    // The version of a database found in an older format, whose upgrade was refused.
    let older: number | undefined
    const db = await guard(async () => {
      try {
        return await openDB<Schema>(init.name, SCHEMA_VERSION, {
          upgrade (db, oldVersion, _newVersion, tx) {
            if (oldVersion !== 0) {
              // Aborting the upgrade leaves the database as it was, at its old version.
              older = oldVersion
              tx.done.catch(() => {})
              tx.abort()
              return
            }
            db.createObjectStore('versions')
            db.createObjectStore('batches').createIndex('byLast', 'last')
            db.createObjectStore('outcomes')
            db.createObjectStore('txns')
            db.createObjectStore('meta')
          },
          // Another connection wants to upgrade or delete this database: step aside rather than block it.
          blocking () {
            opened.store?.fail('the database is being upgraded or deleted by another connection')
          },
          // The browser closed the connection (storage cleared, disk error): every later call fails.
          terminated () {
            opened.store?.fail('the browser closed the database connection')
          }
        })
      } catch (err) {
        const newer = (err as { name?: unknown } | null)?.name === 'VersionError'
        if (older === undefined && !newer) throw err
        const found = older === undefined ? 'a newer version' : `version ${older}`
        throw new StoreFormatError(
          `IndexedDB database ${JSON.stringify(init.name)} was written by another Tideline version (${found}; this version reads version ${SCHEMA_VERSION}): delete it or migrate it`,
          { cause: err }
        )
      }
    })
    const store = new IdbStore(db)
    opened.store = store
    return store
  }

  private fail (reason: string): void {
    if (this.failure !== undefined) return
    this.failure = reason
    this.db.close()
  }

  /** A readonly transaction over `names`. */
  private read (names: Name[]): ReadTx {
    return this.live().transaction(names, 'readonly')
  }

  /** The database, or a StoreFailedError once closed or failed. */
  private live (): Db {
    if (this.failure !== undefined) throw new StoreFailedError(`store closed: ${this.failure}`)
    return this.db
  }

  async write (batch: StoreBatch): Promise<void> {
    checkBatch(batch)
    return guard(async () => {
      const durability = (batch.durability ?? 'strict') === 'strict' ? 'strict' : 'relaxed'
      const tx = unwrap(this.live()).transaction(ALL, 'readwrite', { durability })
      const done = completion(tx)
      try {
        await apply(tx, batch)
      } catch (err) {
        try { tx.abort() } catch { /* already finished */ }
        done.catch(() => {})
        throw err
      }
      await done
    })
  }

  async latest (key: string, below: Timestamp): Promise<Version | undefined> {
    return guard(async () => latestIn(this.read(['versions']), key, below))
  }

  async latestValues (keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>> {
    return guard(async () => {
      // One transaction, so a batch landing meanwhile is seen by all of the keys or none.
      const tx = this.read(['versions'])
      const versions = await Promise.all(keys.map(async key => latestIn(tx, key, below)))
      return versions.map(v => v?.value)
    })
  }

  async txnRecords (clientTxnIds: readonly string[]): Promise<Array<string | undefined>> {
    if (clientTxnIds.length === 0) return []
    return guard(async () => {
      const store = this.read(['txns']).objectStore('txns')
      return Promise.all(clientTxnIds.map(async id => store.get(id)))
    })
  }

  async batchRange (coordinator: string, epoch: number, from: number, to: number): Promise<Batch[]> {
    const lo = Math.max(1, from)
    if (!(lo <= to)) return []
    return guard(async () => {
      // `to` may be Infinity: a valid number key, above every seq.
      const records = await this.read(['batches']).objectStore('batches').getAll(IDBKeyRange.bound([coordinator, epoch, lo], [coordinator, epoch, to]))
      return records.map(r => r.batch)
    })
  }

  async outcome (ts: Timestamp): Promise<Outcome | undefined> {
    return guard(async () => this.live().get('outcomes', ts))
  }

  async getMeta (name: string): Promise<Value | undefined> {
    return guard(async () => this.live().get('meta', name))
  }

  async entries (below: Timestamp): Promise<Array<[string, Value]>> {
    return guard(async () => entriesIn(this.read(['versions']), below))
  }

  async gc (horizon: Timestamp, options: { readonly records?: Timestamp } = {}): Promise<GcResult> {
    return guard(async () => {
      const tx = this.live().transaction(ALL, 'readwrite', { durability: 'strict' })
      try {
        const result = await collect(tx, horizon, options.records)
        await tx.done
        return result
      } catch (err) {
        abort(tx)
        throw err
      }
    })
  }

  async exportSnapshot (at: Timestamp): Promise<StoreSnapshot> {
    return guard(async () => {
      const tx = this.read(['versions', 'txns', 'meta'])
      const entries = await entriesIn(tx, at)
      const txns: Array<[string, string]> = []
      await scan(tx, 'txns', (id, record) => { if (record.slice(0, 36) < at) txns.push([id, record]) })
      const meta: Array<[string, Value]> = []
      await scan(tx, 'meta', (name, value) => { meta.push([name, value]) })
      return { at, entries, txns, meta }
    })
  }

  async importSnapshot (snapshot: StoreSnapshot): Promise<void> {
    for (const [, value] of snapshot.entries) checkValue(value, Infinity)
    for (const [, value] of snapshot.meta) checkValue(value, Infinity)
    return guard(async () => {
      // Every store is cleared, batches and outcomes too (as MemoryStore does), and loaded in one transaction:
      // a crash leaves the old contents or the snapshot, never a mix.
      const tx = this.live().transaction(ALL, 'readwrite', { durability: 'strict' })
      try {
        const writes: Array<Promise<unknown>> = ALL.map(async name => tx.objectStore(name).clear())
        const versions = tx.objectStore('versions')
        for (const [key, value] of snapshot.entries) writes.push(versions.put(value, [key, TS_ZERO]))
        const txns = tx.objectStore('txns')
        for (const [id, record] of snapshot.txns) writes.push(txns.put(record, id))
        const meta = tx.objectStore('meta')
        for (const [name, value] of snapshot.meta) writes.push(meta.put(value, name))
        await Promise.all(writes)
      } catch (err) {
        abort(tx)
        throw err
      }
      await tx.done
    })
  }

  async close (): Promise<void> {
    // IndexedDB finishes the transactions already started, then closes.
    this.fail('closed by its owner')
  }
}

/** The newest version of `key` strictly below `below`: one step of a reverse cursor. */
async function latestIn (tx: ReadTx, key: string, below: Timestamp): Promise<Version | undefined> {
  const cursor = await tx.objectStore('versions').openCursor(IDBKeyRange.bound([key], [key, below], false, true), 'prev')
  return cursor === null ? undefined : { ts: cursor.key[1], value: cursor.value }
}

/**
 * Visits every row of a store in key order, `SCAN_CHUNK` at a time: a
 * getAllKeys and a getAll over the same range in one transaction return the
 * same rows in the same order, and cost two round trips per chunk instead of
 * one per row as a cursor would.
 */
async function scan<S extends Name> (
  tx: ReadTx, name: S, visit: (key: Schema[S]['key'], value: Schema[S]['value']) => void, upper?: IDBKeyRange
): Promise<void> {
  const store = tx.objectStore(name)
  let range: IDBKeyRange | undefined = upper
  for (;;) {
    const [keys, values] = await Promise.all([store.getAllKeys(range, SCAN_CHUNK), store.getAll(range, SCAN_CHUNK)])
    for (let i = 0; i < keys.length; i++) visit(keys[i] as Schema[S]['key'], values[i])
    if (keys.length < SCAN_CHUNK) return
    const last = keys[keys.length - 1] as IDBValidKey
    range = upper?.upper === undefined
      ? IDBKeyRange.lowerBound(last, true)
      : IDBKeyRange.bound(last, upper.upper as IDBValidKey, true, upper.upperOpen)
  }
}

/** Per key, the last version below `below` is its value; keys come out in string order. */
async function entriesIn (tx: ReadTx, below: Timestamp): Promise<Array<[string, Value]>> {
  const out: Array<[string, Value]> = []
  let current: string | undefined
  let value: Value | undefined
  const flush = (): void => {
    if (current !== undefined && value !== undefined) out.push([current, value])
    value = undefined
  }
  await scan(tx, 'versions', ([key, ts], v) => {
    if (key !== current) {
      flush()
      current = key
    }
    if (ts < below) value = v
  })
  flush()
  return out
}

async function collect (tx: IDBPTransaction<Schema, Name[], 'readwrite'>, horizon: Timestamp, records: Timestamp | undefined): Promise<GcResult> {
  const deletes: Array<Promise<unknown>> = []
  const below = IDBKeyRange.upperBound(horizon, true)

  // Per key, every version below the newest one below the horizon goes, and that one too if it is a deletion:
  // one range delete per key.
  let versionsRemoved = 0
  const versions = tx.objectStore('versions')
  let key: string | undefined
  let count = 0
  let newest: Timestamp | undefined
  let deleted = false
  const flush = (): void => {
    if (key === undefined || newest === undefined) return
    const n = deleted ? count : count - 1
    if (n > 0) deletes.push(versions.delete(IDBKeyRange.bound([key], [key, newest], false, !deleted)))
    versionsRemoved += n
    count = 0
    newest = undefined
  }
  await scan(tx, 'versions', ([k, ts], v) => {
    if (k !== key) {
      flush()
      key = k
    }
    if (ts < horizon) {
      count++
      newest = ts
      deleted = v === undefined
    }
  })
  flush()

  // Batches whose last thunk lies below the horizon go, found by that index, and outcomes below it.
  const batches = tx.objectStore('batches')
  const outcomes = tx.objectStore('outcomes')
  const [gone, outcomesRemoved] = await Promise.all([batches.index('byLast').getAllKeys(below), outcomes.count(below)])
  for (const range of keyRuns(gone)) deletes.push(batches.delete(range))
  deletes.push(outcomes.delete(below))

  let recordsRemoved = 0
  if (records !== undefined) {
    const txns = tx.objectStore('txns')
    await scan(tx, 'txns', (id, record) => {
      if (record.slice(0, 36) < records) {
        deletes.push(txns.delete(id))
        recordsRemoved++
      }
    })
  }
  await Promise.all(deletes)
  return { versionsRemoved, batchesRemoved: gone.length, outcomesRemoved, recordsRemoved }
}

function abort (tx: IDBPTransaction<Schema, Name[], 'readwrite'>): void {
  try {
    tx.abort()
  } catch {
    // Already finished or aborted by the failing request.
  }
  tx.done.catch(() => {})
}

/** Runs `fn`; IndexedDB failures (quota, a closed connection, I/O) become StoreFailedError, with the cause kept. */
async function guard<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof TidelineError) throw err
    const e = err as { name?: string, message?: string }
    throw new StoreFailedError(`IndexedDB: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`, { cause: err })
  }
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

/** Settles with the transaction: resolves on complete, rejects on error or abort. */
function completion (tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => { resolve() }
    tx.onabort = () => { reject(tx.error ?? new DOMException('transaction aborted', 'AbortError')) }
  })
}

function request<T> (r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => { resolve(r.result) }
    r.onerror = () => { reject(r.error ?? new DOMException('request failed', 'UnknownError')) }
  })
}

/** An `add` that finds its key taken is a no-op (write-once), not a failed transaction. */
function ignoreTaken (this: IDBRequest, event: Event): void {
  if (this.error?.name === 'ConstraintError') {
    event.preventDefault()
    event.stopPropagation()
  }
}

function addOnce (store: IDBObjectStore, value: unknown, key?: IDBValidKey): void {
  const r = key === undefined ? store.add(value) : store.add(value, key)
  r.onerror = ignoreTaken
}

/** The keys of `store` within [lo, hi], as a set: one request however many there are. */
async function keysBetween (store: IDBObjectStore, lo: Timestamp, hi: Timestamp): Promise<Set<IDBValidKey>> {
  return new Set(await request(store.getAllKeys(IDBKeyRange.bound(lo, hi))))
}

/**
 * Issues one batch's writes on a native transaction. Replicated batches and
 * exactly-once records are write-once `add`s. The first settlement of a
 * timestamp decides it: its outcome is recorded and its versions written; a
 * later one changes nothing (as MemoryStore), which one range probe of the
 * outcomes over the settlements' timestamps tells. Requests are not awaited
 * one by one: a failure aborts the transaction, and `complete` says all of
 * them landed.
 */
async function apply (tx: IDBTransaction, batch: StoreBatch): Promise<void> {
  const batches = tx.objectStore('batches')
  for (const b of batch.batches ?? []) {
    // A batch has at least one thunk; one without any would lie below every horizon.
    const record: BatchRecord = { last: b.thunks[b.thunks.length - 1]?.ts ?? TS_ZERO, batch: b }
    addOnce(batches, record, [b.coordinator, b.epoch, b.seq] satisfies BatchKey)
  }
  const settle = batch.settle ?? []
  if (settle.length > 0) {
    let lo = (settle[0] as Settlement).ts
    let hi = lo
    for (const s of settle) {
      if (s.ts < lo) lo = s.ts
      if (s.ts > hi) hi = s.ts
    }
    const outcomes = tx.objectStore('outcomes')
    const versions = tx.objectStore('versions')
    const settled = await keysBetween(outcomes, lo, hi)
    const puts: Array<[VersionKey, Value | undefined]> = []
    for (const s of settle) {
      if (settled.has(s.ts)) continue
      settled.add(s.ts)
      outcomes.put(s.outcome, s.ts)
      for (const [key, value] of s.writes) puts.push([[key, s.ts], value])
    }
    // In key order: the backing store inserts neighbours together instead of all over the key space.
    puts.sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[0][1] < b[0][1] ? -1 : 1))
    for (const [key, value] of puts) versions.put(value, key)
  }
  const meta = tx.objectStore('meta')
  for (const [name, value] of batch.meta ?? []) meta.put(value, name)
  const txns = tx.objectStore('txns')
  for (const [id, record] of batch.txns ?? []) addOnce(txns, record, id)
}
