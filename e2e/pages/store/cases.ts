import { deleteDB } from 'idb'
import { storeComplianceCases, type StoreFactory } from '@tideline/core/store-compliance-cases'
import type { Store } from '@tideline/core'
import { IdbStore } from '@tideline/store-idb'

/** What a compliance case run reports back to the test: where it ran, and the failure if any. */
export interface CaseResult {
  readonly ok: boolean
  /** The global scope's class: `Window` on the page, `DedicatedWorkerGlobalScope` in the worker. */
  readonly scope: string
  readonly error?: string
}

let n = 0

/** Fresh IndexedDB databases, deleted after each case. */
const factory: StoreFactory = {
  async open () {
    const name = `compliance-${Date.now()}-${n++}`
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

export async function runCase (name: string): Promise<CaseResult> {
  const scope = globalThis.constructor.name
  const c = storeComplianceCases.find(x => x.name === name)
  if (c === undefined) return { ok: false, scope, error: `no compliance case named ${JSON.stringify(name)}` }
  try {
    await c.run(factory)
    return { ok: true, scope }
  } catch (err) {
    const e = err as Error
    return { ok: false, scope, error: `${e.name}: ${e.message}\n${e.stack ?? ''}` }
  }
}
