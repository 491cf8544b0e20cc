import type { Batch, Thunk, WatermarkEntry } from '../types.js'

/** A batch this voter coordinates that is not on a majority yet. */
export interface Inflight {
  /** Replaced once by its signed self (batcher.ts onBatchSigned). */
  batch: Batch
  readonly acks: Set<string>
  readonly mintedAt: number
  sentAt: number
  /** Retransmissions so far: each one waits twice as long as the last. */
  tries: number
}

/** A thunk minted into the open batch: its timestamp is taken, its batch not yet. */
export type OpenThunk = Omit<Thunk, 'epoch' | 'coordinator' | 'seq' | 'index'>

/** What this voter coordinates in an epoch. */
export interface CoordinatorState {
  nextSeq: number
  /** Minted, not yet sealed into a batch (sealed when the local writer is free, see replica.ts). */
  open: OpenThunk[]
  /** Rough encoded size of `open`, to seal before a batch outgrows a frame. */
  openBytes: number
  /** By seq, in seal order. */
  readonly inflight: Map<number, Inflight>
  /** Persisted here, not yet sent to the others (sent at the end of the turn). */
  outbox: Batch[]
  lastPromise: WatermarkEntry | undefined
  /** The last entry this voter published (frozen while sealed), and when it last sent one to every voter itself, not only to the entry hub. */
  lastEntry: WatermarkEntry | undefined
  lastDirect: number
}
