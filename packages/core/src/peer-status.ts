import type { Divergence } from './protocol/effects.js'
import { isSealed, roleOf, statusOf, type PeerState, type Status } from './protocol/state.js'
import type { Counter } from './protocol/vocabulary.js'
import { timestampMs, type Timestamp } from './timestamp.js'
import type { Role } from './types.js'

/** A snapshot of a peer's protocol state, for status displays and tests. */
export interface PeerStatus {
  readonly id: string
  readonly role: Role
  /** observing, voting, sealed, installing, failed or closed. */
  readonly status: Status
  readonly epoch: number
  readonly voters: readonly string[]
  /** This voter promised a ballot for its epoch and takes none of its writes until the change is decided. */
  readonly sealed: boolean
  readonly watermark: Timestamp
  /** All thunks below this are evaluated and settled here. */
  readonly frontier: Timestamp
  readonly lastEvaluated: Timestamp
  readonly evaluated: number
  readonly digest: string
  /** Batches this voter coordinates that are not on a majority yet, plus its open batch (if any). */
  readonly inflight: number
  /** Batches held here that are not wholly evaluated. */
  readonly unevaluated: number
  /** A voter that is idle and has stopped its heartbeat until work or a voter wakes it (quiesce.ts). */
  readonly quiet: boolean
  readonly failed: string | undefined
  /** Set once another replica reported a different digest at a count this one also evaluated. */
  readonly diverged: Divergence | undefined
  /** Its store disagrees with its cursor's state digest, or a majority of the voters outvoted its digest: it holds reads and takes a snapshot. */
  readonly healing: boolean
  /** It is fetching or importing a snapshot (healing, or behind what the voters still hold). */
  readonly snapshotting: boolean
  /** How far this replica is from serving current reads, for progress displays (see SyncStatus). */
  readonly sync: SyncStatus
  /** A partitioned group's replica: the partitions whose state it has. */
  readonly holding?: readonly number[]
  /** The dissemination tree (tree.ts): the peer this one hangs under (an observer with a place), and the peers that hang under it. */
  readonly tree: { readonly parent?: string, readonly children: readonly string[] }
  readonly counters: Readonly<Partial<Record<Counter, number>>>
}

/**
 * Where a replica stands in catching up: `snapshot` while it fetches or
 * imports one (received counts its items: values, then exactly-once
 * records; total is 0 until the last chunk is in, as the source streams it
 * without knowing its size first) or heals; `catching-up` while its frontier trails
 * the watermark it knows by more than SYNC_LIVE_LAG_MS (received and total
 * count this epoch's batches: evaluated, and known to exist); `live` once it
 * keeps up (received = total).
 */
export interface SyncStatus {
  readonly phase: 'snapshot' | 'catching-up' | 'live'
  readonly received: number
  readonly total: number
}

/** How far (in timestamp ms) a replica's frontier may trail the watermark it knows and still count as live: an evaluation run or two. */
export const SYNC_LIVE_LAG_MS = 1_000

export function syncStatus (s: PeerState): SyncStatus {
  const f = s.history.fetch
  if (f !== undefined || s.history.heal !== undefined) return { phase: 'snapshot', received: f?.received ?? 0, total: f === undefined || f.next <= (f.last ?? Infinity) ? 0 : f.received }
  let received = 0
  let total = 0
  for (const [c, stream] of s.current.streams) {
    received += stream.evalNext - 1
    total += Math.max(stream.evalNext - 1, stream.have, s.current.wm.get(c)?.count ?? 0)
  }
  const wm = s.current.wm.value
  const behind = timestampMs(wm) - timestampMs(s.frontier) > SYNC_LIVE_LAG_MS
  return behind ? { phase: 'catching-up', received, total: Math.max(total, received) } : { phase: 'live', received, total: received }
}

/** Per-coordinator sequence positions in the current epoch (tests and quiescence checks). */
export function sequencesOf (s: PeerState): Record<string, { have: number, evalNext: number }> {
  const out: Record<string, { have: number, evalNext: number }> = {}
  for (const [c, stream] of s.current.streams) out[c] = { have: stream.have, evalNext: stream.evalNext }
  return out
}

export function peerStatus (s: PeerState): PeerStatus {
  let unevaluated = 0
  for (const record of s.epochs.values()) for (const stream of record.streams.values()) unevaluated += stream.held.size
  return {
    id: s.id,
    role: roleOf(s),
    status: statusOf(s),
    epoch: s.current.epoch,
    voters: s.current.voters,
    sealed: isSealed(s),
    watermark: s.current.wm.value,
    frontier: s.frontier,
    lastEvaluated: s.lastEvaluated,
    evaluated: s.evaluatedCount,
    digest: s.hasher.digest(),
    inflight: s.current.coordinator.inflight.size + (s.current.coordinator.open.length > 0 ? 1 : 0),
    unevaluated,
    quiet: s.detector.quiet && roleOf(s) === 'voter',
    failed: s.failure,
    diverged: s.divergence,
    healing: s.history.heal !== undefined,
    snapshotting: s.history.fetch !== undefined,
    sync: syncStatus(s),
    ...(s.parts === undefined ? {} : { holding: [...s.parts.have].sort((a, b) => a - b) }),
    tree: { ...(s.tree.parent === undefined ? {} : { parent: s.tree.parent.id }), children: [...s.tree.children.keys()] },
    counters: { ...s.counters }
  }
}
