import 'fake-indexeddb/auto'
import { deleteDB } from 'idb'
import { storeComplianceTests } from '@tideline/core/store-compliance'
import type { Store } from '@tideline/core'
import { IdbStore } from '../src/index.js'

// The fast extra run: the compliance suite on fake-indexeddb in Node. The real
// runs are in Chromium (e2e/tests/store-idb.spec.ts), on the page and in a worker.
let n = 0
storeComplianceTests('IdbStore (fake-indexeddb)', {
  async open () {
    const name = `tideline-test-${n++}`
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
})
