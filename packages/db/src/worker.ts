import { expose } from 'comlink'
import { ProcedureHashMismatchError, STORE_METHODS, StoreFailedError, storeApplier, type AppliedRun, type Cursor, type RunApplier, type RunPlan, type RunRules, type Store, type StoreMethod, type Thunk } from '@tideline/core'
import { IdbStore } from '@tideline/store-idb'
import { registryOf } from './procedures.js'
import { webCryptoCallVerifier } from './call-verifier.js'
import { inviteReader } from '@tideline/net-libp2p/invite-reader'

/**
 * What a database's Web Worker serves over Comlink: every method of the
 * `Store` contract (derived from `STORE_METHODS`, so the main thread's
 * `Peer` sees an ordinary store), opening, closing, and the evaluation of
 * runs of thunks next to the store.
 */
export type WorkerApi = Pick<Store, StoreMethod> & {
  /** Opens (creating) the IndexedDB database `name`; refuses when the worker's procedures hash differently from the page's. */
  open(name: string, registryHash: string): Promise<void>
  applyRun(run: readonly Thunk[], base: Cursor, rules: RunRules, plan?: RunPlan): Promise<AppliedRun>
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
  const api = {
    ...forwardStore(store),
    async open (name: string, registryHash: string) {
      if (registryHash !== registry.hash) throw new ProcedureHashMismatchError(`the worker's procedures hash to ${registry.hash}, the page's to ${registryHash}: both must import the same procedures`)
      if (state.store !== undefined) return
      state.store = await IdbStore.open({ name })
      state.apply = storeApplier({ store: state.store, registry, verifyCall: webCryptoCallVerifier(), readInvite: inviteReader() })
    },
    applyRun: async (run: readonly Thunk[], base: Cursor, rules: RunRules, plan?: RunPlan) => {
      if (state.apply === undefined) throw new StoreFailedError('the worker store is not open')
      return await state.apply(run, base, rules, plan)
    },
    async close () {
      const s = state.store
      delete state.store
      delete state.apply
      await s?.close()
    }
  } satisfies WorkerApi
  expose(api)
}

/** Every Store method, each forwarded to whatever store `target()` returns at call time. */
export function forwardStore (target: () => Store): Pick<Store, StoreMethod> {
  const out: Partial<Record<StoreMethod, (...args: never[]) => unknown>> = {}
  for (const m of STORE_METHODS) out[m] = (...args: never[]) => (target()[m] as (...a: never[]) => unknown)(...args)
  return out as Pick<Store, StoreMethod>
}
