import { openDB, unwrap, type IDBPDatabase } from 'idb'
import { StoreFailedError, StoreFormatError, TS_ZERO, VersionWindow, checkBatch, checkValue, cloneValue, importByStaging, stagedDigest, timestampPredecessor, timestampSuccessor } from '@tideline/core'
import type { Batch, BatchRange, GcResult, KeyRange, Outcome, RangeOptions, SnapshotItems, StagedDigest, Store, StoreBatch, StoreSnapshot, Timestamp, Value, Version } from '@tideline/core'
import { DEFAULT_VERSION_WINDOW_MS } from './constants.js'
import { BaseLayer, type Pages, type StagedPages } from './base.js'
import { intact, latestOf, latestRow, metaOf, recordOf, sealed } from './checks.js'
import { collect, type GcPass } from './gc.js'
import { abort, all, completion, guard, request, rows, scan } from './requests.js'
import { NewestReader } from './newest.js'
import { outcomesIn } from './runs.js'
import { rangeIn } from './range.js'
import { ALL, SCHEMA_VERSION, type BatchRecord, type LatestRecord, type MetaRow, type Name, type RunRecord, type Schema, type TxnRow } from './schema.js'
import { apply, type Replaced } from './settle.js'
import { addChecks } from './upgrade.js'

/** The object stores a snapshot import replaces whole (`batches` and `meta` keep what the snapshot does not name; `base` switches pages). */
const REPLACED_BY_SNAPSHOT: readonly Name[] = ['latest', 'runs', 'txns']

export interface IdbStoreInit {
  /** Name of the IndexedDB database; created when missing. One replica per database. */
  readonly name: string
  /**
   * How long (by the timestamps of the writes that replaced them) the
   * versions before each key's newest stay in memory for reads below it; a
   * read that needs an older one fails with SnapshotTooOldError.
   * @default 10000
   */
  readonly versionWindowMs?: number
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
 * Only each key's newest version is on disk (`latest`: its timestamp and
 * value), written once per key per settlement batch; each IndexedDB request
 * is an IPC round trip in Chromium, and a layout with every version cost one
 * put per version and per outcome. When a settlement replaces a key's newest
 * version, the replaced one stays in memory (VersionWindow) for
 * `versionWindowMs`, for reads below the newest (strict reads whose timestamp
 * later runs passed). A read that needs a version no longer held (older than
 * the window, or settled before the store was opened) fails with
 * SnapshotTooOldError.
 *
 * Each settlement batch's outcomes are one record (`runs`, keyed by its last
 * timestamp). The write-once check of settlements is answered from memory in
 * the common case: the store keeps the newest timestamp it was asked to
 * settle, and a settlement above it is the first of its timestamp. Only the
 * others (late or repeated settlements) look their timestamp up among the run
 * records, inside the settling transaction.
 *
 * The window and the newest settled timestamp live in this object: it must be
 * the database's only writer (one replica per database, as the `db` package
 * ensures across tabs). A write that fails after handing replaced versions to
 * the window forgets every version held, as a reopen does: reads below the
 * newest are then refused rather than answered from a batch that never landed.
 *
 * Every record carries a check over its object store, key and content
 * (checks.ts), verified on every read: a damaged value, exactly-once record,
 * run record or meta record is never answered (StoreCorruptionError naming
 * it), a damaged batch is left out of `batchRange` and named, and writing
 * that batch again replaces it. A snapshot import replaces damaged values and
 * records; writing a meta record replaces it.
 *
 * The database version is the store format (`SCHEMA_VERSION`). Versions 3
 * and 4 are upgraded in place (their records gain checks, upgrade.ts).
 * Opening a database written by another Tideline version fails with
 * StoreFormatError and leaves it untouched: version 1 (per-thunk records)
 * and 2 (every version) databases cannot be read by this protocol, and
 * wiping them in an upgrade would silently lose what the replica promised,
 * acknowledged and decided. Such a database has to be deleted
 * (`indexedDB.deleteDatabase`) or migrated by its owner first.
 */
export class IdbStore implements Store {
  private readonly db: IDBPDatabase<Schema>
  private readonly raw: IDBDatabase
  private readonly window: VersionWindow<Value | undefined>
  /** Where the GC pass under way stands (bounded steps resume there). */
  private gcPass: GcPass = {}
  /** The snapshot being staged, if any. */
  private staged: StagedPages | undefined
  private readonly reader = new NewestReader()
  /** The last imported snapshot's values, in pages (keys written since have `latest` records that shadow them). */
  private readonly base = new BaseLayer()
  /**
   * No outcome is recorded, nor will be by a write already issued, above this
   * timestamp. Raised when a write is issued, before it lands: transactions
   * run in the order they were created, so a settlement above it cannot have
   * been settled by any earlier write; a failed write leaves it too high,
   * which costs lookups only.
   */
  private topOutcome: Timestamp = TS_ZERO
  private failure: string | undefined

  private constructor (db: IDBPDatabase<Schema>, windowMs: number) {
    this.db = db
    this.raw = unwrap(db)
    this.window = new VersionWindow(windowMs)
  }

  static async open (init: IdbStoreInit): Promise<IdbStore> {
    // Set once the connection is open; the callbacks below only fire after that.
    const opened: { store?: IdbStore } = {}
    // The version of a database found in an older format, whose upgrade was refused.
    let older: number | undefined
    // Why the upgrade of a version 3 or 4 database failed, if it did.
    const upgrading: { failed?: unknown } = {}
    const db = await guard(async () => {
      try {
        return await openDB<Schema>(init.name, SCHEMA_VERSION, {
          upgrade (db, oldVersion, _newVersion, tx) {
            // Versions 3 and 4 hold nothing that means something else in 5: 3 gains the (empty) pages, both gain checks.
            if (oldVersion === 3 || oldVersion === 4) {
              if (oldVersion === 3) db.createObjectStore('base')
              tx.done.catch(() => {})
              addChecks(unwrap(tx)).catch((err: unknown) => {
                upgrading.failed = err
                abort(unwrap(tx))
              })
              return
            }
            if (oldVersion !== 0) {
              // Aborting the upgrade leaves the database as it was, at its old version.
              older = oldVersion
              tx.done.catch(() => {})
              tx.abort()
              return
            }
            db.createObjectStore('latest')
            db.createObjectStore('batches').createIndex('byLast', 'last')
            db.createObjectStore('runs')
            db.createObjectStore('txns')
            db.createObjectStore('meta')
            db.createObjectStore('base')
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
        if (upgrading.failed !== undefined) {
          const reason = upgrading.failed instanceof Error ? `${upgrading.failed.name}: ${upgrading.failed.message}` : JSON.stringify(upgrading.failed)
          throw new StoreFailedError(`IndexedDB database ${JSON.stringify(init.name)} could not be upgraded to version ${SCHEMA_VERSION} (it is left as it was): ${reason}`, { cause: upgrading.failed })
        }
        const newer = (err as { name?: unknown } | null)?.name === 'VersionError'
        if (older === undefined && !newer) throw err
        const found = older === undefined ? 'a newer version' : `version ${older}`
        throw new StoreFormatError(
          `IndexedDB database ${JSON.stringify(init.name)} was written by another Tideline version (${found}; this version reads version ${SCHEMA_VERSION}): delete it or migrate it`,
          { cause: err }
        )
      }
    })
    const store = new IdbStore(db, init.versionWindowMs ?? DEFAULT_VERSION_WINDOW_MS)
    opened.store = store
    try {
      const cursor = await guard(async () => request(store.raw.transaction('runs', 'readonly').objectStore('runs').openKeyCursor(null, 'prev')))
      const last = cursor?.key as Timestamp | undefined
      store.topOutcome = last ?? TS_ZERO
      // Versions replaced before this open are gone: reads at or below everything settled then may need them.
      store.window.reset(last === undefined ? TS_ZERO : timestampSuccessor(last))
      await guard(async () => store.base.load(store.raw.transaction('base', 'readonly').objectStore('base')))
    } catch (err) {
      db.close()
      throw err
    }
    return store
  }

  private fail (reason: string): void {
    if (this.failure !== undefined) return
    this.failure = reason
    this.db.close()
  }

  /** A native transaction, or a StoreFailedError once closed or failed. */
  private transaction (names: Name | Name[], mode: IDBTransactionMode, durability?: IDBTransactionDurability): IDBTransaction {
    if (this.failure !== undefined) throw new StoreFailedError(`store closed: ${this.failure}`)
    return this.raw.transaction(names, mode, durability === undefined ? undefined : { durability })
  }

  async write (batch: StoreBatch): Promise<void> {
    checkBatch(batch)
    return guard(async () => {
      const tx = this.transaction(ALL, 'readwrite', (batch.durability ?? 'strict') === 'strict' ? 'strict' : 'relaxed')
      const done = completion(tx)
      // Decided now, when the transaction is created: settlements above it were settled by no earlier write.
      const checkUpTo = this.topOutcome
      for (const s of batch.settle ?? []) if (s.ts > this.topOutcome) this.topOutcome = s.ts
      let replaced: Replaced[]
      try {
        replaced = await apply(tx, batch, checkUpTo, this.reader, this.base.current)
      } catch (err) {
        abort(tx)
        throw err
      }
      // Held before the batch lands: a read that sees its new newest versions finds the ones they
      // replaced (one that sees the old ones never looks for them).
      for (const [key, version, by] of replaced) this.window.replaced(key, version, by)
      try {
        await done
      } catch (err) {
        // The window may now hold late writes that never landed: forget every held version, as a reopen does.
        if (replaced.length > 0) this.window.reset(timestampSuccessor(this.topOutcome))
        throw err
      }
      if (replaced.length > 0) this.window.trim(this.topOutcome)
    })
  }

  /** The version a read below `below` sees, from the key's newest on disk or the window. */
  private version (key: string, newest: LatestRecord | undefined, below: Timestamp): Version | undefined {
    const v = this.window.read(key, newest, below)
    // Held in memory, unlike one just read: a copy, so that a caller cannot change what later reads see.
    return v === undefined || v === newest ? v : { ts: v.ts, value: cloneValue(v.value) }
  }

  async latest (key: string, below: Timestamp): Promise<Version | undefined> {
    return (await this.newestOf([key], below))[0]
  }

  async latestValues (keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>> {
    if (keys.length === 0) return []
    return (await this.newestOf(keys, below)).map(v => v?.value)
  }

  /** The version of each key a read below `below` sees: its `latest` record, else the snapshot's page, then the window. */
  private async newestOf (keys: readonly string[], below: Timestamp): Promise<Array<Version | undefined>> {
    return guard(async () => {
      // One transaction, so a batch landing meanwhile is seen by all of the keys or none.
      const tx = this.transaction(['latest', 'base'], 'readonly')
      const pages = this.base.current
      const store = tx.objectStore('latest')
      const got = await all(keys.map(key => store.get(key) as IDBRequest<unknown>))
      // Checked: a damaged one throws, naming its key.
      const newest = got.map((row, i) => (row === undefined ? undefined : latestOf(keys[i] as string, row)))
      const paged = pages.empty ? undefined : await pages.lookup(tx.objectStore('base'), keys.filter((_k, i) => newest[i] === undefined))
      return keys.map((key, i) => this.version(key, newest[i] ?? paged?.get(key), below))
    })
  }

  async txnRecords (clientTxnIds: readonly string[]): Promise<Array<string | undefined>> {
    if (clientTxnIds.length === 0) return []
    return guard(async () => {
      const store = this.transaction('txns', 'readonly').objectStore('txns')
      const got = await all(clientTxnIds.map(id => store.get(id) as IDBRequest<unknown>))
      return got.map((row, i) => (row === undefined ? undefined : recordOf(clientTxnIds[i] as string, row)))
    })
  }

  async batchRange (coordinator: string, epoch: number, from: number, to: number): Promise<BatchRange> {
    const lo = Math.max(1, from)
    if (!(lo <= to)) return { batches: [], damaged: [] }
    return guard(async () => {
      // `to` may be Infinity: a valid number key, above every seq. With their keys (one request with
      // getAllRecords), which the checks cover: a record at another batch's key fails.
      const found = await rows(this.transaction('batches', 'readonly').objectStore('batches'), IDBKeyRange.bound([coordinator, epoch, lo], [coordinator, epoch, to]))
      const batches: Batch[] = []
      const damaged: number[] = []
      for (const [key, row] of found) {
        if (intact('batches', key, row)) batches.push((row as BatchRecord).batch)
        else damaged.push((key as [string, number, number])[2])
      }
      return { batches, damaged }
    })
  }

  async outcome (ts: Timestamp): Promise<Outcome | undefined> {
    return guard(async () => (await outcomesIn(this.transaction('runs', 'readonly').objectStore('runs'), [ts])).get(ts))
  }

  async getMeta (name: string): Promise<Value | undefined> {
    return guard(async () => {
      const row = await request(this.transaction('meta', 'readonly').objectStore('meta').get(name) as IDBRequest<unknown>)
      return row === undefined ? undefined : metaOf(name, row)
    })
  }

  async entries (below: Timestamp): Promise<Array<[string, Value]>> {
    return guard(async () => this.entriesIn(this.transaction(['latest', 'base'], 'readonly'), this.base.current, below))
  }

  async range (range: KeyRange, below: Timestamp, options?: RangeOptions): Promise<Array<[string, Value]>> {
    return guard(async () => rangeIn(this.transaction(['latest', 'base'], 'readonly'), this.base.current, range, options, (key, newest) => this.version(key, newest, below)))
  }

  /** One pass over the newest versions, pages and records (and the window for keys written at or above `below`); keys come out in string order. */
  private async entriesIn (tx: IDBTransaction, pages: Pages, below: Timestamp): Promise<Array<[string, Value]>> {
    const out: Array<[string, Value]> = []
    const seen = new Set<string>()
    const take = (key: string, record: LatestRecord): void => {
      const v = this.version(key, record, below)
      if (v?.value !== undefined) out.push([key, v.value])
    }
    await scan(tx.objectStore('latest'), (key, row) => {
      seen.add(key as string)
      take(key as string, latestOf(key as string, row))
    })
    if (pages.empty) return out
    await pages.each(tx.objectStore('base'), (key, record) => { if (!seen.has(key)) take(key, record) })
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  }

  async gc (horizon: Timestamp, options: { readonly records?: Timestamp, readonly limit?: number } = {}): Promise<GcResult> {
    return guard(async () => {
      const tx = this.transaction(ALL, 'readwrite', 'strict')
      const done = completion(tx)
      let result: GcResult
      try {
        result = await collect(tx, horizon, options.records, options.limit ?? Infinity, this.gcPass, this.base.current)
      } catch (err) {
        abort(tx)
        throw err
      }
      await done
      // topOutcome stays as it is: above the newest outcome left, it only costs lookups.
      return { ...result, versionsRemoved: result.versionsRemoved + this.window.forget(horizon) }
    })
  }

  async exportSnapshot (at: Timestamp): Promise<StoreSnapshot> {
    return guard(async () => {
      const tx = this.transaction(['latest', 'txns', 'meta', 'base'], 'readonly')
      const entries = await this.entriesIn(tx, this.base.current, at)
      const txns: Array<[string, string]> = []
      // A damaged record throws, whether or not it is below `at`: what it says cannot be told.
      await scan(tx.objectStore('txns'), (id, row) => {
        const record = recordOf(id as string, row)
        if (record.slice(0, 36) < at) txns.push([id as string, record])
      })
      const meta: Array<[string, Value]> = []
      await scan(tx.objectStore('meta'), (name, row) => { meta.push([name as string, metaOf(name as string, row)]) })
      return { at, entries, txns, meta }
    })
  }

  async importSnapshot (snapshot: StoreSnapshot): Promise<void> {
    for (const [, value] of snapshot.meta) checkValue(value, Infinity)
    await importByStaging(this, snapshot)
  }

  async beginStaged (at: Timestamp): Promise<void> {
    return guard(async () => {
      const tx = this.transaction('base', 'readwrite')
      const done = completion(tx)
      this.staged = this.base.stage(tx.objectStore('base'), at)
      await done
    })
  }

  /** Writes a part as pages beside the current ones (one transaction; not durable until the commit) and hashes it meanwhile. */
  async stagePart (items: SnapshotItems): Promise<StagedDigest> {
    const staged = this.staging()
    // Checked before anything is written: a value that does not encode throws here.
    const sizes = items.entries.map(([, value]) => checkValue(value, Infinity))
    return guard(async () => {
      const tx = this.transaction('base', 'readwrite', 'relaxed')
      const done = completion(tx)
      try {
        staged.put(tx.objectStore('base'), items.entries, sizes, items.txns)
      } catch (err) {
        abort(tx)
        throw err
      }
      const digest = stagedDigest(items)
      await done
      return digest
    })
  }

  /**
   * The staged snapshot becomes the state in one transaction: values,
   * records and run records are replaced (a crash leaves the old state or
   * the snapshot's, never a mix); batches and meta the snapshot does not
   * name stay. Its values stand as of just below `at`: reads at or above it
   * see them, older ones are refused.
   */
  async commitStaged (meta: ReadonlyArray<readonly [string, Value]>): Promise<void> {
    const staged = this.staging()
    for (const [, value] of meta) checkValue(value, Infinity)
    // Checked before anything is issued (a throw after the switch below would fail the store).
    const asOf = timestampPredecessor(staged.at)
    const metaRows = meta.map(([name, value]) => [name, sealed('meta', name, { value }) satisfies MetaRow] as const)
    const looseRows = staged.loose.map(([key, value]) => [key, latestRow(key, { ts: asOf, value })] as const)
    return guard(async () => {
      const tx = this.transaction(ALL, 'readwrite', 'strict')
      const done = completion(tx)
      let switched = false
      try {
        for (const name of REPLACED_BY_SNAPSHOT) tx.objectStore(name).clear()
        const base = tx.objectStore('base')
        this.base.commit(base, staged)
        switched = true
        const latest = tx.objectStore('latest')
        for (const [key, row] of looseRows) latest.put(row, key)
        // An empty run record there: a reopen then knows nothing below `at` is held (see open).
        tx.objectStore('runs').put(sealed('runs', asOf, { first: asOf, outcomes: [] }) satisfies RunRecord, asOf)
        const metaStore = tx.objectStore('meta')
        for (const [name, row] of metaRows) metaStore.put(row, name)
        const txns = tx.objectStore('txns')
        await staged.eachRecord(base, (id, record) => { txns.put(sealed('txns', id, { record }) satisfies TxnRow, id) })
        this.base.dropRecords(base, staged)
      } catch (err) {
        abort(tx)
        if (switched) this.fail(`a snapshot import failed: ${(err as Error).message}`)
        throw err
      }
      try {
        await done
      } catch (err) {
        // Transactions created meanwhile took the new pages as current, over a store that kept the old ones.
        this.fail(`a snapshot import failed: ${(err as Error).message}`)
        throw err
      }
      this.staged = undefined
      // topOutcome stays unless raised: lowering it could let a write issued meanwhile settle a timestamp twice; too high costs lookups only.
      if (asOf > this.topOutcome) this.topOutcome = asOf
      this.window.reset(staged.at)
      this.gcPass = {}
    })
  }

  async dropStaged (): Promise<void> {
    const staged = this.staged
    if (staged === undefined) return
    this.staged = undefined
    return guard(async () => {
      const tx = this.transaction('base', 'readwrite')
      const done = completion(tx)
      this.base.drop(tx.objectStore('base'), staged)
      await done
    })
  }

  private staging (): StagedPages {
    if (this.staged === undefined) throw new TypeError('no snapshot is being staged (beginStaged first)')
    return this.staged
  }

  async close (): Promise<void> {
    // IndexedDB finishes the transactions already started, then closes.
    this.fail('closed by its owner')
  }
}
