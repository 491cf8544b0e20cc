import type { Divergence } from './protocol/effects.js'
import { isSealed, roleOf, statusOf, type PeerState, type Status } from './protocol/state.js'
import type { Counter } from './protocol/vocabulary.js'
import type { Timestamp } from './timestamp.js'
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
  readonly failed: string | undefined
  /** Set once another replica reported a different digest at a count this one also evaluated. */
  readonly diverged: Divergence | undefined
  /** Its store disagrees with its cursor's state digest, or a majority of the voters outvoted its digest: it holds reads and takes a snapshot. */
  readonly healing: boolean
  /** It is fetching or importing a snapshot (healing, or behind what the voters still hold). */
  readonly snapshotting: boolean
  readonly counters: Readonly<Partial<Record<Counter, number>>>
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
    failed: s.failure,
    diverged: s.divergence,
    healing: s.history.heal !== undefined,
    snapshotting: s.history.fetch !== undefined,
    counters: { ...s.counters }
  }
}
