import { deleteDB } from 'idb'
import type { StoreFactory } from '@tideline/core/store-compliance-cases'
import type { Store } from '@tideline/core'
import { IdbStore } from '../src/index.js'

/** Compliance-suite factory: a fresh IndexedDB database per case, reopened by name and deleted afterwards. */
export function idbStoreFactory (prefix: string): StoreFactory {
  let n = 0
  return {
    versionWindow: true,
    async open (options = {}) {
      const name = `${prefix}-${n++}`
      let current: Store = await IdbStore.open({ name, ...options })
      return {
        store: current,
        reopen: async () => {
          await current.close()
          current = await IdbStore.open({ name, ...options })
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
