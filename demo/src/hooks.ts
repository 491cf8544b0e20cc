import type { BoardHook } from './board.js'
import type { SeatsHook } from './seats.js'

// The pages' small test and console hooks (bulk actions the UI would need many
// clicks for); the e2e test imports these types.

declare global {
  interface Window {
    demo: BoardHook
    demoSeats: SeatsHook
  }
}

export type { BoardHook, SeatsHook }
