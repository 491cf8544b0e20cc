import { storeComplianceCases } from '@tideline/core/store-compliance-cases'
import { idbStoreFactory } from '@tideline/store-idb/test-support'

/** What a compliance case run reports back to the test: where it ran, and the failure if any. */
export interface CaseResult {
  readonly ok: boolean
  /** The global scope's class: `Window` on the page, `DedicatedWorkerGlobalScope` in the worker. */
  readonly scope: string
  readonly error?: string
}

/** Fresh IndexedDB databases, deleted after each case. */
const factory = idbStoreFactory(`compliance-${Date.now()}`)

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
