import { deleteDB } from 'idb'
import type { StoreFactory } from '@tideline/core/store-compliance-cases'
import type { Store } from '@tideline/core'
import { IdbStore } from '../src/index.js'

/** Compliance-suite factory: a fresh IndexedDB database per case, reopened by name and deleted afterwards. */
export function idbStoreFactory (prefix: string): StoreFactory {
  let n = 0
  return {
    async open () {
      const name = `${prefix}-${n++}`
      let current: Store = await IdbStore.open({ name })
      return {
        store: current,
        reopen: async () => {
          await current.close()
          current = await IdbStore.open({ name })
          return current
        },
        cleanup: async () => {
          await current.close()
          await deleteDB(name)
        }
      }
    }
  }
}
