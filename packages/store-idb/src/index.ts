export { IdbStore } from './idb-store.js'
export type { IdbStoreInit } from './idb-store.js'
