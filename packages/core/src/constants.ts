/** Defaults shared by the protocol state machines. Every option documents its default here. */

/** How long a coordinator waits for an ack before re-sending a write. */
export const DEFAULT_WRITE_RETRY_MS = 40
/** How often a busy voter gossips its watermark entry when nothing else carries it. */
export const DEFAULT_GOSSIP_INTERVAL_MS = 20
/** How often an idle voter publishes its entry (its heartbeat: the failure detector and an idle group's watermark move with it). */
export const DEFAULT_IDLE_HEARTBEAT_MS = 200
/** Groups of at least this many voters send busy voters' entries through one hub voter (promise.ts): below it all-to-all costs about the same. */
export const ENTRY_HUB_MIN_VOTERS = 4
/** A voter with nothing to do (and no observer or candidate to serve) this long goes quiet: no heartbeat until work or a voter wakes it (quiesce.ts). */
export const DEFAULT_QUIESCE_AFTER_MS = 2_000
/**
 * A quiet voter repeats its quiet entry every this many `suspectMs` (20 s by default): a voter cut
 * off while the others changed epoch, quiet itself, would otherwise never hear of it (nobody speaks).
 */
export const QUIET_REFRESH_SUSPECTS = 10
/**
 * How often, at least, a busy peer runs its timeouts (retransmission, gap
 * fill, proposals, read and call deadlines); a busy voter also runs them when
 * its next entry is due (schedule.ts). It was 5 ms: a tick costs a relay
 * about 0.65 ms, so a busy relay spent about 100 ms of CPU a second polling
 * (docs/bench/partitions.md, the busy tick).
 */
export const BUSY_TICK_MS = 20
/** The soonest a peer runs its timeouts again after a step. */
export const MIN_TICK_MS = 1
/** A peer counts as busy this long after its last piece of work (a write, a call, a read, a reconfiguration message). */
export const BUSY_WINDOW_MS = 200
/** How often a replica asks again for thunks it knows it is missing. */
export const DEFAULT_GAP_RETRY_MS = 30
/** Most batches asked for in one gap-fill message (the answer is split into messages of at most DEFAULT_WRITE_BATCH thunks). */
export const DEFAULT_GAP_BATCH = 64
/** Most thunks evaluated and settled in one run. */
export const DEFAULT_MAX_RUN_THUNKS = 4096
/** Most thunks in one write or gap-fill message (whole batches: a batch is never split). */
export const DEFAULT_WRITE_BATCH = 2048
/** Default time a client call may take before it fails with a timeout. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000
/** How far ahead of its clock a voter reserves promises durably (the clock lease). */
export const DEFAULT_CLOCK_LEASE_MS = 1_000
/** Most entries of each kind (newest values, batches, run records, exactly-once records) one GC step looks at. */
export const GC_STEP_LIMIT = 4096
/** Pause between the bounded steps of one GC pass. */
export const GC_STEP_PAUSE_MS = 20
/** How long a clientTxnId stays exactly-once after its first submission (GroupConfig.txnRetentionMs). */
export const DEFAULT_TXN_RETENTION_MS = 24 * 60 * 60 * 1000
/** How far a submission's firstAt may lie ahead of its timestamp (GroupConfig.txnSkewMs). */
export const DEFAULT_TXN_SKEW_MS = 60_000
/** Largest skew a voter accepts when raising its clock to a peer's timestamp. */
export const DEFAULT_MAX_SKEW_MS = 2_000
/** How long a voter keeps fanning writes out to an observer it has not heard from. */
export const DEFAULT_OBSERVER_TTL_MS = 3_000
/** How often an observer announces itself to the voters. */
export const DEFAULT_HELLO_INTERVAL_MS = 500
/** Every this many evaluated thunks a replica records its digest, to compare with other replicas'. */
export const DIGEST_CHECKPOINT_EVERY = 32
/** How often a peer tells others its latest digest checkpoint. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 1_000
/** How many checkpoints a replica keeps to compare against. */
export const CHECKPOINTS_KEPT = 64
/** Largest encoded size of one value or one argument object. */
export const DEFAULT_MAX_VALUE_BYTES = 1 << 20
/** Deepest nesting accepted in a value. */
export const MAX_VALUE_DEPTH = 64
/**
 * The longest a voter may stay silent, or its watermark entry stay put, before it is suspected and voted
 * out of the next epoch. A voter heard from steadily is suspected sooner (DEFAULT_SUSPECT_MIN_MS).
 */
export const DEFAULT_SUSPECT_MS = 2_000
/** The silence a voter is always allowed on top of its usual gap between messages and four deviations of it (reconfig/silence.ts). */
export const DEFAULT_SUSPECT_MIN_MS = 500
/** A step this much later than the peer asked to be woken means it stalled itself; the voters are not blamed for that silence. */
export const STALL_MS = 100
/** How long a reconfiguration proposal may take before its proposer tries again with a higher ballot. */
export const DEFAULT_PROPOSE_TIMEOUT_MS = 500
/** Most voters a group grows to by admitting candidates. */
export const DEFAULT_MAX_VOTERS = 7
/** How often a replica that saw a newer epoch asks for the decision it lacks. */
export const DEFAULT_EPOCH_FETCH_MS = 200
/** How far below the group's durable frontier a replica keeps history (batches, outcomes, versions in memory): lagging replicas gap-fill inside it, older ones take a snapshot. */
export const DEFAULT_RETAIN_MS = 60_000
/** Most often a replica runs a GC step. */
export const DEFAULT_GC_INTERVAL_MS = 10_000
/** How often a replica reads its whole state back to find records damaged on disk that nothing has read since (`scrubIntervalMs`). */
export const DEFAULT_SCRUB_INTERVAL_MS = 3_600_000
/** Most often a replica makes its frontier durable with a strict write of its own (idle: every quarter of its retention window). */
export const DURABLE_SYNC_MS = 250
/** Snapshot chunks a requester asks for at once (after the first, which opens the export). */
export const SNAPSHOT_WINDOW = 2
/**
 * Most bytes of values (and keys, counted at 3 bytes a char) in one snapshot chunk; one more value
 * may go over it (at most 1 MiB), so a chunk stays below the transport's 4 MiB frames, in which it
 * travels alone. Each chunk is a round trip: 10 MB in 1 MiB chunks took a tab 2 to 2.7 s, in 2 MiB
 * chunks 1.7 s.
 */
export const SNAPSHOT_CHUNK_BYTES = 2 * 1024 * 1024
/**
 * A snapshot request unanswered this long is sent again (the same chunk: a
 * stream resumes where it stopped), each wait twice the last (a large
 * export takes its source a while before the first chunk).
 */
export const SNAPSHOT_RETRY_MS = 1_000
/** Tries of one request (the first and two resends, 7 s in all) before the requester turns to another voter (and starts over). */
export const SNAPSHOT_TRIES = 3
/** How long a request waits for the first chunk of a new export (its source waits for a run to end, opens a view of its store and reads the chunk), doubling with each voter asked in turn. */
export const SNAPSHOT_FIRST_CHUNK_MS = 3_000
/** A voter drops an export nobody asked a chunk of for this long. */
export const SNAPSHOT_LEASE_MS = 60_000
/** Most exports a voter holds at once (each a view of its store and a few chunks; a whole copy on a store without `openSnapshot`). */
export const MAX_SNAPSHOT_EXPORTS = 2
/** A voter repeats an unchanged durable-frontier report this often (a voter that rejoined learns where the others stand). */
export const REPORT_REFRESH_MS = 5_000

/** Most contacts a peer whose epoch's voters are all silent asks at once (epoch-news.ts reachOut). */
export const MAX_REACH_OUT = 16

/** Most children an observer serves in the dissemination tree (tree.ts). */
export const DEFAULT_TREE_SLOTS = 3
/** Most children a voter serves in the tree: each is one more copy of every batch leaving the voters. */
export const DEFAULT_TREE_ROOT_SLOTS = 1
/** Least time between two `tw` a voter sends its children while busy (tree.ts): each is a signature, a check at every observer, and a message per child. */
export const TREE_ENTRIES_MS = 40
