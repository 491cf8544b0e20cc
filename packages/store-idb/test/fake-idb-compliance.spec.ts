import 'fake-indexeddb/auto'
import { storeComplianceTests } from '@tideline/core/store-compliance'
import { idbStoreFactory } from '../test-support/factory.js'

// The fast extra run: the compliance suite on fake-indexeddb in Node. The real
// runs are in Chromium (e2e/tests/store-idb.spec.ts), on the page and in a worker.
storeComplianceTests('IdbStore (fake-indexeddb)', idbStoreFactory('tideline-test'))
