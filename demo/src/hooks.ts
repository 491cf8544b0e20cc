// The pages' small test and console hooks (bulk actions the UI would need many
// clicks for): each page declares its own on `window`; the e2e test imports
// their types from here.
export type { BoardHook } from './board.js'
export type { SeatsHook } from './seats.js'
