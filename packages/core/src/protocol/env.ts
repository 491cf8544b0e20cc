import type { RunApplier } from '../apply.js'
import type { Message } from '../messages.js'
import type { ProcedureRegistry } from '../procedures.js'
import type { Store } from '../store.js'
import type { Timestamp } from '../timestamp.js'
import type { Divergence, PeerState } from './state.js'

/** The injected clock: milliseconds, possibly skewed, possibly stepping back. */
export interface Clock {
  now(): number
}

/** An injected structured logger (`debug`-style namespace is the host's choice). */
export type Logger = (event: string, detail?: Record<string, unknown>) => void

/** A decided epoch change as this peer installed it. */
export interface EpochEvent {
  readonly epoch: number
  readonly voters: readonly string[]
  /** Old-epoch thunks aborted by the change (their clients retry with the same clientTxnId). */
  readonly aborted: number
}

/** What one evaluated run changed: the keys it wrote and the frontier after it. */
export interface AppliedEvent {
  readonly written: readonly string[]
  readonly frontier: Timestamp
}

/** The protocol's tunables, defaults applied (see `PeerInit` for each one's meaning). */
export interface PeerOptions {
  readonly writeRetryMs: number
  readonly gossipIntervalMs: number
  readonly gapRetryMs: number
  readonly callTimeoutMs: number
  readonly maxSkewMs: number
  readonly clockLeaseMs: number
  readonly maxValueBytes: number
  readonly suspectMs: number
  readonly proposeTimeoutMs: number
  readonly maxVoters: number
  readonly candidate: boolean
  readonly admitVoter: (peerId: string) => boolean
}

/** Everything a peer was given rather than holds: services, options and listeners. */
export interface PeerEnv {
  readonly registry: ProcedureRegistry
  readonly store: Store
  readonly applier: RunApplier
  readonly clock: Clock
  /** Hands a message to the transport; delivery may fail silently. */
  readonly transport: (to: string, message: Message) => void
  /** Delivers a message from this peer to itself on a later microtask, like any other. */
  readonly deliverToSelf: (message: Message) => void
  readonly log: Logger
  readonly options: PeerOptions
  readonly appliedListeners: Set<(e: AppliedEvent) => void>
  readonly epochListeners: Set<(e: EpochEvent) => void>
  readonly divergenceListeners: Set<(d: Divergence) => void>
}

export function send (s: PeerState, env: PeerEnv, to: string, message: Message): void {
  if (s.closed || to === s.id) return
  env.transport(to, message)
}

export function errorInfo (err: unknown): { name: string, message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message }
  return { name: 'Error', message: String(err) }
}
