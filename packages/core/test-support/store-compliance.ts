import { describe, expect, it } from 'vitest'
import { storeComplianceCases, type StoreFactory } from './store-compliance-cases.js'

export { storeComplianceCases, thunkAt, tsAt } from './store-compliance-cases.js'
export type { ComplianceCase, StoreFactory, StoreHandle } from './store-compliance-cases.js'

/** Registers every Store compliance case as a Vitest test against one implementation. */
export function storeComplianceTests (name: string, factory: StoreFactory): void {
  describe(`Store compliance: ${name}`, () => {
    // Each case asserts with chai inside `run`, which rejects with the failed assertion.
    it.for(storeComplianceCases)('$name', async c => { await expect(c.run(factory)).resolves.toBeUndefined() })
  })
}
