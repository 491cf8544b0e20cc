import { deleteDB } from 'idb'
import type { StoreFactory } from '@tideline/core/store-compliance-cases'
import type { Store } from '@tideline/core'
import { IdbStore } from '../src/index.js'
import { damageIdbRecord } from './damage.js'

/** Compliance-suite factory: a fresh IndexedDB database per case, reopened by name and deleted afterwards. */
export function idbStoreFactory (prefix: string): StoreFactory {
  let n = 0
  return {
    versionWindow: true,
    async open (options = {}) {
      const name = `${prefix}-${n++}`
      let current: Store = await IdbStore.open({ name, ...options })
      const reopen = async (): Promise<Store> => {
        await current.close()
        current = await IdbStore.open({ name, ...options })
        return current
      }
      return {
        store: current,
        reopen,
        // The real records, changed on a second connection; a page the store may hold in memory needs a reopen.
        damage: async (target, kind) => ((await damageIdbRecord(name, target, kind)).page ? reopen() : current),
        cleanup: async () => {
          await current.close()
          await deleteDB(name)
        }
      }
    }
  }
}
