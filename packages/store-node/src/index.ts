export { LevelStore } from './level-store.js'
export type { LevelStoreInit } from './level-store.js'
