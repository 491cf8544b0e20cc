import type { InviteReader } from './claims.js'
import type { RunApplier } from './apply.js'
import * as C from './constants.js'
import { InvalidArgumentError } from './errors.js'
import type { Message } from './messages.js'
import type { ProcedureRegistry } from './procedures.js'
import type { PeerOptions } from './protocol/state.js'
import type { Store } from './store.js'
import type { GroupConfig, ReadConsistency } from './types.js'
import type { Timestamp } from './timestamp.js'
import type { DecisionSigner } from './protocol/reconfig/proof.js'

/** The injected clock: milliseconds, possibly skewed, possibly stepping back. */
export interface Clock {
  now(): number
}

/** An injected structured logger (`debug`-style namespace is the host's choice; `logLevelOf(event)` gives each event's level). */
export type Logger = (event: string, detail?: Record<string, unknown>) => void

export interface PeerInit {
  readonly id: string
  readonly config: GroupConfig
  readonly registry: ProcedureRegistry
  readonly store: Store
  readonly clock: Clock
  /** Hands a message to the transport; delivery may fail silently. */
  readonly send: (to: string, message: Message) => void
  /** @default no logging */
  readonly logger?: Logger
  /** @default DEFAULT_WRITE_RETRY_MS */
  readonly writeRetryMs?: number
  /** @default DEFAULT_GOSSIP_INTERVAL_MS */
  readonly gossipIntervalMs?: number
  /** In groups of ENTRY_HUB_MIN_VOTERS or more voters, busy voters send their entries through one hub voter (entry-hub.ts); false: every voter to every voter. @default true */
  readonly entryHub?: boolean
  /** How often an idle voter publishes its watermark entry (its heartbeat; keep it well below `suspectMinMs`). @default DEFAULT_IDLE_HEARTBEAT_MS */
  readonly idleHeartbeatMs?: number
  /** How long a voter idles before it goes quiet (stops its heartbeat; quiesce.ts); 0: never. @default DEFAULT_QUIESCE_AFTER_MS */
  readonly quiesceAfterMs?: number
  /** @default DEFAULT_GAP_RETRY_MS */
  readonly gapRetryMs?: number
  /** @default DEFAULT_CALL_TIMEOUT_MS */
  readonly callTimeoutMs?: number
  /** @default DEFAULT_MAX_SKEW_MS */
  readonly maxSkewMs?: number
  /** @default DEFAULT_CLOCK_LEASE_MS */
  readonly clockLeaseMs?: number
  /** @default DEFAULT_MAX_VALUE_BYTES */
  readonly maxValueBytes?: number
  /**
   * Most calls this peer takes as a voter per second (a token bucket holding a second's worth);
   * beyond it a call is refused with RateLimitedError before anything is minted. A relay's
   * per-group limit: one team cannot take a shared relay from the others. @default unlimited
   */
  readonly maxCallsPerSec?: number
  /**
   * Evaluates and settles runs of thunks. @default in-process against `store`
   * (a browser database passes one that runs in its Web Worker).
   */
  readonly applier?: RunApplier
  /**
   * The failure detector's bounds. A voter is suspected once silent for `suspectMinMs` plus its usual gap
   * between messages plus four deviations of that gap, learnt as it goes, and never later than `suspectMs`;
   * a voter whose watermark entry stays put for `suspectMs` is suspected too. Wider bounds for voters on
   * slow or distant links (browser voters on the internet), narrower on a LAN.
   * @default DEFAULT_SUSPECT_MS, DEFAULT_SUSPECT_MIN_MS
   */
  readonly suspectMs?: number
  readonly suspectMinMs?: number
  /** @default DEFAULT_PROPOSE_TIMEOUT_MS */
  readonly proposeTimeoutMs?: number
  /** @default DEFAULT_MAX_VOTERS */
  readonly maxVoters?: number
  /** Most thunks evaluated and settled in one run (one applier call, one store batch); a run may end inside a batch. @default DEFAULT_MAX_RUN_THUNKS */
  readonly maxRunThunks?: number
  /**
   * How far below the group's durable frontier (the least any current voter
   * evaluated and persisted) this replica keeps history for lagging replicas
   * and old reads; below it, GC removes batches, outcomes and older versions,
   * and a replica further behind catches up by snapshot.
   * @default 60000
   */
  readonly retainMs?: number
  /** Most often a GC step runs (a step scans every key's newest entry on the durable stores). @default 10000 */
  readonly gcIntervalMs?: number
  /**
   * How often the replica reads every value and exactly-once record back
   * (`scrub`), so a record damaged on disk that nothing has read since is
   * found (and healed by snapshot) before a snapshot or a read needs it.
   * @default DEFAULT_SCRUB_INTERVAL_MS (an hour)
   */
  readonly scrubIntervalMs?: number
  /** Most entries of each kind one GC step looks at (a pass is several steps, GC_STEP_PAUSE_MS apart). @default GC_STEP_LIMIT */
  readonly gcStepLimit?: number
  /** About how many bytes of values and keys one snapshot chunk holds. @default SNAPSHOT_CHUNK_BYTES */
  readonly snapshotChunkBytes?: number
  /**
   * This peer's keys (its id names its public key): as an acceptor it signs
   * what it accepts, so a decision carries its majority's signatures and any
   * member may pass it on; it checks the decisions others pass on. Without
   * one, decisions are taken only from the ended epoch's voters.
   * @default none
   */
  readonly signer?: DecisionSigner
  /**
   * Callers' invites, in a group of signed calls: `invite` is this peer's
   * own (text form), presented with each call it signs (absent: it is the
   * creator or a genesis voter); `readInvite` reads the ones calls bring, for
   * the default applier (net-libp2p's `inviteReader`).
   */
  readonly invite?: string
  readonly readInvite?: InviteReader
  /**
   * The group members this peer can reach now (the host's connections). A
   * peer that hears from none of its epoch's voters asks them how the group
   * went on (they may be in a later epoch whose decisions it needs).
   * @default none
   */
  readonly contacts?: () => readonly string[]
  /**
   * Whether this peer takes `peerId`'s submissions (its role includes
   * calling; a reader's are refused with PermissionDeniedError). The host
   * knows the roles (net-libp2p: from invites).
   * @default every member may call
   */
  readonly mayCall?: (peerId: string) => boolean
  /**
   * Whether a member may ask this voter to revoke a member or an invite
   * (`revoke` messages; the host knows the roles, net-libp2p: admins). A
   * voter's own `Peer.revoke` needs no permission.
   * @default no one
   */
  readonly mayRevoke?: (peerId: string) => boolean
  /**
   * In a partitioned group, the partitions this peer follows while it is not
   * a voter (a voter holds those it is placed on). It then receives only
   * their part of each batch, so it cannot be a `candidate`.
   * @default every partition
   */
  readonly partitions?: readonly number[]
  /** While not a voter, ask the voters to add this peer (relays do; tabs normally do not). @default false */
  readonly candidate?: boolean
  /**
   * Which candidates a voter may add to the next epoch (they are already
   * authenticated group members; this is the policy on top).
   * @default none
   */
  readonly admitVoter?: (peerId: string) => boolean
  /**
   * Check `invariants(state)` after every step and throw InvariantError when
   * one breaks (tests turn it on; a production peer skips the cost).
   * @default false
   */
  readonly checkInvariants?: boolean
  /**
   * Run the protocol's timeouts on the peer's own timer, armed for when the
   * next one is due (`nextDue`): every few ms while busy, at the heartbeat
   * when idle. Off, the host calls `tick()` (tests with a fake clock do).
   * @default false
   */
  readonly selfTimed?: boolean
  /**
   * The dissemination tree (tree.ts, issue 23): `join`, as an observer of
   * every partition, hang under a voter or another observer and get batches
   * and entries through it rather than from every voter (default false);
   * `slots`, most children this observer serves (default 3); `rootSlots`,
   * most a voter serves (default 1); `addresses`, where others reach this
   * peer; `connect`, how the host dials a parent it is pointed at;
   * `disconnect`, how it hangs up on a member struck out for forging.
   */
  readonly tree?: { readonly join?: boolean, readonly slots?: number, readonly rootSlots?: number, readonly addresses?: () => readonly string[], readonly connect?: (peer: string, addrs: readonly string[]) => void, readonly disconnect?: (peer: string) => void }
}

/** The protocol options with their defaults applied. */
export function peerOptions (init: Omit<PeerInit, 'id' | 'config' | 'registry' | 'store' | 'clock' | 'send'>): PeerOptions {
  // A peer of some partitions holds projections of batches: as a voter it would serve and report them as whole.
  if (init.candidate === true && init.partitions !== undefined) throw new InvalidArgumentError('a candidate (a peer that asks to be a voter) follows every partition: give it no partitions')
  return {
    writeRetryMs: init.writeRetryMs ?? C.DEFAULT_WRITE_RETRY_MS,
    gossipIntervalMs: init.gossipIntervalMs ?? C.DEFAULT_GOSSIP_INTERVAL_MS,
    entryHub: init.entryHub ?? true,
    idleHeartbeatMs: init.idleHeartbeatMs ?? C.DEFAULT_IDLE_HEARTBEAT_MS,
    quiesceAfterMs: init.quiesceAfterMs ?? C.DEFAULT_QUIESCE_AFTER_MS,
    gapRetryMs: init.gapRetryMs ?? C.DEFAULT_GAP_RETRY_MS,
    callTimeoutMs: init.callTimeoutMs ?? C.DEFAULT_CALL_TIMEOUT_MS,
    maxSkewMs: init.maxSkewMs ?? C.DEFAULT_MAX_SKEW_MS,
    clockLeaseMs: init.clockLeaseMs ?? C.DEFAULT_CLOCK_LEASE_MS,
    maxValueBytes: init.maxValueBytes ?? C.DEFAULT_MAX_VALUE_BYTES,
    maxCallsPerSec: init.maxCallsPerSec ?? Infinity,
    suspectMs: init.suspectMs ?? C.DEFAULT_SUSPECT_MS,
    suspectMinMs: init.suspectMinMs ?? C.DEFAULT_SUSPECT_MIN_MS,
    proposeTimeoutMs: init.proposeTimeoutMs ?? C.DEFAULT_PROPOSE_TIMEOUT_MS,
    maxVoters: init.maxVoters ?? C.DEFAULT_MAX_VOTERS,
    maxRunThunks: init.maxRunThunks ?? C.DEFAULT_MAX_RUN_THUNKS,
    retainMs: init.retainMs ?? C.DEFAULT_RETAIN_MS,
    gcIntervalMs: init.gcIntervalMs ?? C.DEFAULT_GC_INTERVAL_MS,
    scrubIntervalMs: init.scrubIntervalMs ?? C.DEFAULT_SCRUB_INTERVAL_MS,
    gcStepLimit: init.gcStepLimit ?? C.GC_STEP_LIMIT,
    snapshotChunkBytes: init.snapshotChunkBytes ?? C.SNAPSHOT_CHUNK_BYTES,
    candidate: init.candidate ?? false,
    admitVoter: init.admitVoter ?? (() => false),
    signs: init.signer !== undefined,
    contacts: init.contacts ?? (() => []),
    mayCall: init.mayCall ?? (() => true),
    mayRevoke: init.mayRevoke ?? (() => false),
    partitions: init.partitions,
    tree: { join: init.tree?.join ?? false, slots: init.tree?.slots ?? C.DEFAULT_TREE_SLOTS, rootSlots: init.tree?.rootSlots ?? C.DEFAULT_TREE_ROOT_SLOTS, addresses: init.tree?.addresses ?? (() => []) }
  }
}

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
  /** The replica installed a snapshot: any key may have changed (`written` is empty). */
  readonly reset?: boolean
}

export interface CallOptions {
  readonly signal?: AbortSignal
  /** @default the peer's callTimeoutMs */
  readonly timeoutMs?: number
}

export interface ReadOptions extends CallOptions {
  /** @default 'strict' */
  readonly consistency?: ReadConsistency
}
