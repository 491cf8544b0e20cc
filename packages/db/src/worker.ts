import { expose } from 'comlink'
import { ProcedureHashMismatchError, StoreFailedError, storeApplier, type AppliedRun, type Cursor, type RunApplier, type Store, type StoreBatch, type StoreSnapshot, type Thunk, type Timestamp } from '@tideline/core'
import { IdbStore } from '@tideline/store-idb'
import { registryOf } from './procedures.js'

/**
 * What a database's Web Worker serves over Comlink: the replica's IndexedDB
 * store and the evaluation of runs of thunks next to it. The `Store` methods
 * are the contract's, so the main thread's `Peer` sees an ordinary store.
 */
export interface WorkerApi {
  /** Opens (creating) the IndexedDB database `name`; refuses when the worker's procedures hash differently from the page's. */
  open(name: string, registryHash: string): Promise<void>
  applyRun(run: readonly Thunk[], base: Cursor): Promise<AppliedRun>
  write(batch: StoreBatch): Promise<void>
  latest: Store['latest']
  latestValues: Store['latestValues']
  txnRecords: Store['txnRecords']
  thunkRange: Store['thunkRange']
  unsettled: Store['unsettled']
  outcome: Store['outcome']
  getMeta: Store['getMeta']
  entries: Store['entries']
  gc(horizon: Timestamp, options?: { readonly records?: Timestamp }): ReturnType<Store['gc']>
  exportSnapshot(at: Timestamp): Promise<StoreSnapshot>
  importSnapshot(snapshot: StoreSnapshot): Promise<void>
  close(): Promise<void>
}

/**
 * The body of a database worker. In the app's worker module:
 *
 * ```ts
 * import { serveWorker } from '@tideline/db/worker'
 * import { procedures } from './procedures'
 * serveWorker(procedures)
 * ```
 *
 * and `openDatabase({ …, worker: () => new Worker(new URL('./db.worker.ts', import.meta.url), { type: 'module' }) })`.
 * The worker must import the same procedures as the page (checked on open).
 */
export function serveWorker (procedures: object): void {
  const registry = registryOf(procedures)
  const state: { store?: IdbStore, apply?: RunApplier } = {}
  const store = (): IdbStore => {
    if (state.store === undefined) throw new StoreFailedError('the worker store is not open')
    return state.store
  }
  const api: WorkerApi = {
    async open (name, registryHash) {
      if (registryHash !== registry.hash) throw new ProcedureHashMismatchError(`the worker's procedures hash to ${registry.hash}, the page's to ${registryHash}: both must import the same procedures`)
      if (state.store !== undefined) return
      state.store = await IdbStore.open({ name })
      state.apply = storeApplier({ store: state.store, registry })
    },
    applyRun: async (run, base) => {
      if (state.apply === undefined) throw new StoreFailedError('the worker store is not open')
      return await state.apply(run, base)
    },
    write: batch => store().write(batch),
    latest: (key, below) => store().latest(key, below),
    latestValues: (keys, below) => store().latestValues(keys, below),
    txnRecords: ids => store().txnRecords(ids),
    thunkRange: (c, e, from, to) => store().thunkRange(c, e, from, to),
    unsettled: () => store().unsettled(),
    outcome: ts => store().outcome(ts),
    getMeta: name => store().getMeta(name),
    entries: below => store().entries(below),
    gc: (horizon, options) => store().gc(horizon, options),
    exportSnapshot: at => store().exportSnapshot(at),
    importSnapshot: snap => store().importSnapshot(snap),
    async close () {
      const s = state.store
      delete state.store
      delete state.apply
      await s?.close()
    }
  }
  expose(api)
}
