export { LevelStore } from './level-store.js'
export type { LevelStoreInit } from './level-store.js'
export { benchLevelApply } from './bench.js'
export type { BenchLevelOptions, BenchLevelResult } from './bench.js'
