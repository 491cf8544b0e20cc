import { TS_ZERO, type Timestamp } from '../timestamp.js'
import type { Cursor } from '../types.js'
import type { StateDigest } from '../state-digest.js'
import type { SnapshotItems } from '../store.js'

/**
 * What a peer keeps to bound its history (DESIGN §11): how far its own
 * evaluation is settled and durable, what the voters reported of theirs,
 * how far it collected garbage, and the snapshots it fetches or serves.
 */

/** A snapshot this replica is fetching, chunk by chunk, from one voter. */
export interface SnapshotFetch {
  readonly id: string
  readonly source: string
  /** The chunk the stream goes on with: every one before it was received, in order. */
  next: number
  /** Items (entries, then exactly-once records) received in order so far (and handed to the store to stage). */
  received: number
  /** Chunks the store staged (it answers each with its digest lanes). */
  staged: number
  /** Chunks asked for and not in yet, and chunks that arrived ahead of the stream. */
  readonly asked: Set<number>
  readonly ahead: Map<number, SnapshotItems>
  /** The last chunk's number, once a chunk said it is the last. */
  last: number | undefined
  /** Set by the first chunk in: every later one must agree. */
  at: Timestamp | undefined
  cursor: Cursor | undefined
  /** The source's StateDigest of the whole snapshot (it comes with the last chunk). */
  digest: string | undefined
  /** StateDigests of the values and of the records staged so far. */
  readonly values: StateDigest
  readonly records: StateDigest
  askedAt: number
  tries: number
  /** Every chunk is in and self-consistent: the current voters are asked whether it is their state too (state-votes.ts). */
  vote: { readonly count: number, readonly agree: Set<string>, readonly against: Set<string>, readonly silent: Set<string> } | undefined
  /** A majority vouched for it: evaluation pauses so the import lands between runs. */
  ready: boolean
  importing: boolean
}

/**
 * A snapshot this voter streams to one requester, held under a lease: a
 * reader on its store (a view taken at `at`), read a chunk at a time just
 * ahead of the requests, with only the chunks the requester may still ask
 * for in memory.
 */
export interface SnapshotExport {
  readonly to: string
  readonly at: Timestamp
  readonly cursor: Cursor
  /** Chunks read and still held (number → items). */
  readonly chunks: Map<number, SnapshotItems>
  /** The next chunk to read, and whether a read is under way. */
  next: number
  reading: boolean
  /** The highest chunk asked for, and the lowest the requester may still ask for (it has those before). */
  asked: number
  keepFrom: number
  /** The number of the last chunk, once read. */
  last: number | undefined
  /** The whole snapshot's StateDigest as read so far: the cursor's state digest, plus every record (and every value, for a cursor without one). */
  readonly digest: StateDigest
  lastAsked: number
  /** The last chunk was sent. */
  done: boolean
}

export interface HistoryState {
  /** Settled, then made durable by a strict write: this replica never needs anything below it again, even after a crash. */
  durable: Timestamp
  syncing: boolean
  lastSyncAt: number
  /** Voters → the durable frontier and GC point each last reported of itself. */
  readonly reported: Map<string, { durable: Timestamp, gc: Timestamp }>
  /** What this voter last reported, and when. */
  lastReport: string
  lastReportAt: number
  /** History below this is collected here. */
  gcAt: Timestamp
  /** The horizon of the last GC step that removed a batch: a replica behind it may find what it needs gone (what voters report as `gc`). */
  collected: Timestamp
  gcRunning: boolean
  /** When the last scrub (a read of the whole state, for damage) started, and whether it runs. */
  scrubbedAt: number
  scrubbing: boolean
  /** The last GC step was bounded and stopped short: the pass goes on after GC_STEP_PAUSE_MS. */
  gcMore: boolean
  lastGcAt: number
  fetch: SnapshotFetch | undefined
  fetches: number
  /** When a voter last answered a gap request with `gone` (what this replica needs was collected there). */
  gapGoneAt: number
  /** Count → voter → the result digest it reported there (the last few counts): who agrees with whom. */
  readonly voterCheckpoints: Map<number, Map<string, string>>
  /** Set while this replica heals: a majority of the voters agree on a history this one's digest disagrees with; it takes a snapshot from one of them. */
  heal: { readonly voters?: readonly string[], readonly count: number } | undefined
  /** An export asked for and not yet taken (evaluation pauses for it). */
  exportWanted: { readonly id: string, readonly to: string } | undefined
  readonly exports: Map<string, SnapshotExport>
  /** Evaluated count → the StateDigest lanes after it (the last few thousand), to vouch for a snapshot taken there. */
  readonly stateTrail: Map<number, readonly [number, number]>
  /** Counts not reached yet → who asked for the state digest there. */
  readonly stateAsks: Map<number, Set<string>>
}

/** `now`: the peer's start; its first sync and GC step wait their intervals from there. */
export function newHistoryState (now: number): HistoryState {
  return {
    durable: TS_ZERO,
    syncing: false,
    lastSyncAt: now,
    reported: new Map(),
    lastReport: TS_ZERO + TS_ZERO,
    lastReportAt: now,
    gcAt: TS_ZERO,
    collected: TS_ZERO,
    gcRunning: false,
    scrubbedAt: now,
    scrubbing: false,
    gcMore: false,
    lastGcAt: now,
    fetch: undefined,
    fetches: 0,
    gapGoneAt: -Infinity,
    voterCheckpoints: new Map(),
    heal: undefined,
    exportWanted: undefined,
    exports: new Map(),
    stateTrail: new Map(),
    stateAsks: new Map()
  }
}
