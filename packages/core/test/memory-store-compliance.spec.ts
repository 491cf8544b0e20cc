import { MemoryStore } from '../src/index.js'
import { storeComplianceTests } from '../test-support/store-compliance.js'

storeComplianceTests('MemoryStore', {
  async open () {
    const store = new MemoryStore({ journal: true })
    let current = store
    return {
      store,
      // A journaled MemoryStore "reopens" as the store a restart would find.
      reopen: async () => { current = current.crashAndRecover(); return current },
      // Objects, not bytes: every kind of damage is a record that fails its check (see DamageSet).
      damage: async target => { current.damaged.add(target); return current }
    }
  }
})
