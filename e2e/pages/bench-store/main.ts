import { deleteDB } from 'idb'
import { benchStore, type StoreBenchOptions, type StoreBenchResult } from '@tideline/core/store-bench'
import { IdbStore } from '@tideline/store-idb'

/** Runs the store benchmark on a fresh IndexedDB database, deleted afterwards. */
async function run (name: string, opts: StoreBenchOptions): Promise<StoreBenchResult> {
  await deleteDB(name)
  const store = await IdbStore.open({ name })
  try {
    return await benchStore(store, opts)
  } finally {
    await store.close()
    await deleteDB(name)
  }
}

const storeBench = { run }

declare global {
  interface Window { storeBench: typeof storeBench }
}
window.storeBench = storeBench
