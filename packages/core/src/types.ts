import type { KeyRange } from './key-range.js'
import type { Timestamp } from './timestamp.js'
import type { Value } from './value.js'

/**
 * How a group splits its key space (DESIGN.md §13). A key's *scope* is its
 * first `depth` segments (split by `separator`; a key with fewer segments is
 * its own scope); its partition is `assign[scope]` when given, else a hash
 * of the scope modulo `count`. Fixed at genesis, so every replica maps a key
 * the same way for good.
 *
 * Each partition lives on `replicas` of the epoch's voters (all of them when
 * there are fewer), chosen by rendezvous hashing over the voter list: part
 * of the epoch's configuration, since it follows from its voters, and moved
 * by an epoch change that changes them.
 */
export interface PartitionSpec {
  /** Partitions, 1 to MAX_PARTITIONS. */
  readonly count: number
  /** Voters holding each partition. @default 3 */
  readonly replicas?: number
  /** @default '/' */
  readonly separator?: string
  /** Segments of a key that make its scope. @default 1 */
  readonly depth?: number
  /** Scopes pinned to a partition (an app's boards each on its own partition, say). */
  readonly assign?: Readonly<Record<string, number>>
  /**
   * Partial replication between voters (docs/design/partitions.md, stage 2b):
   * a placed voter receives, stores and acks only the thunks of its replica
   * set's partitions, and a batch is durable on a majority of the storers of
   * every set it touches. The price is availability: a set that has lost a
   * majority of its voters blocks epoch changes, and so the group, until one
   * comes back; `false` replicates every batch to every voter instead.
   * @default true
   */
  readonly partial?: boolean
}

/** A peer's role in the group. */
export type Role = 'voter' | 'observer'

/**
 * The group's configuration for one epoch. Voters coordinate, store and count
 * toward quorums and the watermark; anyone else who follows the group is an observer.
 */
export interface GroupConfig {
  readonly groupId: string
  readonly epoch: number
  /** Peer ids of the voters, in a fixed order. */
  readonly voters: readonly string[]
  /** Content hash of the procedure registry every member must run. */
  readonly registryHash: string
  /**
   * The signed genesis this group was made from (its creator: an admin, never
   * revoked; its voters: the issuers of invites; its digest): what every
   * replica checks a caller's invite against. Absent: callers are known by
   * their id alone (`tx.caller` has no role). Fixed at genesis.
   */
  readonly genesis?: GenesisIdentity
  /**
   * How long a clientTxnId stays exactly-once, in ms after its first
   * submission (`firstAt`): a later retry is aborted with
   * ExpiredTransactionError on every replica, and exactly-once records older
   * than this (plus `txnSkewMs`) are collected. Group-wide (set at genesis).
   * @default DEFAULT_TXN_RETENTION_MS (24 h)
   */
  readonly txnRetentionMs?: number
  /**
   * How far a submission's `firstAt` may lie ahead of its timestamp; a
   * coordinator refuses one further ahead with ClockSkewError. Group-wide.
   * @default DEFAULT_TXN_SKEW_MS (60 s)
   */
  readonly txnSkewMs?: number
  /**
   * Every call must carry its caller's signature, and every replica checks it
   * before running the call (`tx.caller`); an unsigned or forged call aborts
   * the same way everywhere. Group-wide (set at genesis). @default false
   */
  readonly signedCalls?: boolean
  /**
   * Members and invites the group no longer admits, cumulative, each from
   * the floor of the epoch change that revoked it (installed with the epoch,
   * so every replica agrees from then on). @default none
   */
  readonly revoked?: readonly Revoked[]
  /**
   * How the key space is split into partitions, each held by some of the
   * voters (DESIGN.md §13; placement follows from each epoch's voters).
   * Fixed at genesis. @default one partition, held by every replica
   */
  readonly partitions?: PartitionSpec
}

/**
 * What a member may do, each role including the ones before it: a `reader`
 * reads and subscribes; a `writer` calls procedures too; a `voter` may be
 * voted in as a voter; an `admin` may also revoke. Genesis voters are
 * voters; the group's creator is an admin.
 */
export type MemberRole = 'reader' | 'writer' | 'voter' | 'admin'

/** The group's genesis as replicas check invites against it: its creator, its voters (the issuers of invites) and its digest. */
export interface GenesisIdentity {
  readonly creator: string
  readonly voters: readonly string[]
  readonly digest: string
}

/**
 * What an admin revokes: a member (`peer`: its peer id) or an invite
 * (`invite`: the hex SHA-256 of its signed body), so that no one is
 * admitted with it again.
 */
export interface Revocation {
  readonly kind: 'peer' | 'invite'
  readonly id: string
}

/** A revocation in force: a call whose timestamp lies above `from` (the floor of the epoch change that made it) is refused. */
export interface Revoked extends Revocation {
  readonly from: Timestamp
}

/**
 * Who made a call: the caller's peer id (an Ed25519 key) and its signature,
 * hex, over `callStatement` (the group, clientTxnId, procedure, hash,
 * arguments and firstAt), so no coordinator or member can make a call in
 * its name.
 */
export interface CallerSig {
  readonly id: string
  readonly sig: string
  /**
   * The invite the caller was admitted with, in its text form (covered by
   * the signature): every replica reads the caller's role and name from it
   * (claims.ts). Absent for the group's creator and genesis voters.
   */
  readonly invite?: string
}

/**
 * A transaction's input, replicated instead of its effect. `reads` and
 * `writes` are the keys the procedure declared for these arguments.
 */
export interface Thunk {
  readonly ts: Timestamp
  readonly epoch: number
  /** The voter that minted `ts`. */
  readonly coordinator: string
  /** Its batch's position in the coordinator's sequence for this epoch (see Batch). */
  readonly seq: number
  /** Its position in that batch, from 0. */
  readonly index: number
  readonly procedure: string
  readonly hash: string
  readonly args: Value
  readonly reads: readonly string[]
  readonly writes: readonly string[]
  /** Key ranges the procedure declared it reads whole (KeySets.ranges). */
  readonly ranges?: readonly KeyRange[]
  readonly clientTxnId: string
  /** When the client first submitted this clientTxnId (ms since the epoch, the client's clock); decides expiry. */
  readonly firstAt: number
  /** The signed caller, when the call carried one. */
  readonly caller?: CallerSig
}

/**
 * The unit of replication (DESIGN.md §12): the thunks one coordinator sealed
 * together, with consecutive positions in timestamp order. One sequence
 * number, one store record and one ack per batch; a replica holds all of a
 * batch or none of it, and an epoch change keeps or aborts it whole.
 */
export interface Batch {
  readonly epoch: number
  readonly coordinator: string
  /** Position in the coordinator's sequence for this epoch, from 1, without gaps. */
  readonly seq: number
  /** At least one; thunk `i` has this batch's epoch, coordinator and seq, index `i`, and a timestamp above thunk `i - 1`'s. */
  readonly thunks: readonly Thunk[]
  /**
   * Set on a projection (partition.ts projectBatch): only the thunks an
   * observer following some partitions evaluates, their indices ascending
   * with gaps. Only such an observer, or a placed voter of a partially
   * replicated epoch, takes one; every full replica refuses it.
   */
  readonly projected?: true
  /** On a projection: how many thunks the whole batch has (an epoch change puts a batch back together from projections). */
  readonly n?: number
  /** On a replica set's projection (partial replication): the set, whose partitions' thunks it holds all of. */
  readonly set?: number
  /**
   * The coordinator's Ed25519 signature (hex) of batchStatement: what lets
   * anyone pass the batch on and every receiver check its author
   * (batch-signing.ts). Absent when the coordinator has no signer; only
   * voters take such a batch, and only from its coordinator or a voter.
   */
  readonly sig?: string
  /** On a projection of a signed batch: by index, the SHA-256 (hex) of each thunk it leaves out, '' for those it holds. */
  readonly digests?: readonly string[]
}

/** What evaluating a thunk decided; identical on every replica. */
export type Outcome =
  | { readonly status: 'committed'; readonly value: Value | null }
  | { readonly status: 'aborted'; readonly reason: string; readonly error: string }

/**
 * What a client learns about its transaction. `ts` is the timestamp whose
 * evaluation decided it; `duplicate` is true when this was a retry of a
 * clientTxnId that had already taken effect (its first outcome is returned).
 */
export type TxnResult =
  | { readonly status: 'committed'; readonly value: Value | null; readonly ts: Timestamp; readonly duplicate?: boolean }
  | { readonly status: 'aborted'; readonly reason: string; readonly error: string; readonly ts: Timestamp; readonly duplicate?: boolean }

/** A transaction as a client submits it. */
export interface SubmitRequest {
  readonly clientTxnId: string
  readonly procedure: string
  /** The caller's hash of the procedure; refused when it differs from the group's. */
  readonly hash: string
  readonly args: Value
  /**
   * When this clientTxnId was first submitted (ms since the epoch). A retry
   * must carry the first attempt's value: exactly-once holds for
   * `txnRetentionMs` after it, and a retry past that is refused with
   * ExpiredTransactionError. @default the entry peer's clock, now
   */
  readonly firstAt?: number
  /** The caller and its signature (`signCall`; needs `firstAt`); required in a group with `signedCalls`. */
  readonly caller?: CallerSig
}

/** A voter's watermark entry: it will never issue a timestamp below `svw`, and issued `count` batches wholly below it. */
export interface WatermarkEntry {
  readonly voter: string
  readonly epoch: number
  readonly svw: Timestamp
  readonly count: number
  /**
   * In a partially replicated epoch, per replica set: the last of the
   * voter's first `count` batches with something for that set (0: none),
   * when the voter knows it. A placed voter of the set takes the batches
   * after it, up to `count`, as holding nothing for it.
   */
  readonly tails?: readonly number[]
}

export type ReadConsistency = 'strict' | 'snapshot'

/** Values read by a read-only transaction at `ts` (absent keys are missing). */
export interface ReadResult {
  readonly ts: Timestamp
  readonly values: Readonly<Record<string, Value>>
  /** A range read's live keys and values, in the range's order (`values` holds the same by key). */
  readonly entries?: ReadonlyArray<readonly [string, Value]>
}

/** A Paxos ballot: higher `n` wins, ties broken by proposer id. */
export interface Ballot {
  readonly n: number
  readonly by: string
}

/** Where one coordinator's sequence of batches in the old epoch ends: seqs up to `end` are kept, except `skip` (aborted). */
export interface StreamCut {
  readonly coordinator: string
  readonly end: number
  readonly skip: readonly number[]
}

/**
 * The value an epoch change decides (single-decree Paxos among the old
 * epoch's voters): the new epoch and its voters, the exact set of the old
 * epoch's thunks that are kept, and a timestamp floor above every kept
 * thunk and every promise an agreeing voter made, so the new epoch's
 * timestamps follow all of the old one's.
 */
export interface EpochChange {
  /** The new epoch (the old one plus one). */
  readonly epoch: number
  readonly voters: readonly string[]
  readonly cuts: readonly StreamCut[]
  readonly floor: Timestamp
  /** Kept batches some agreeing voter held unevaluated: carried in the decision so none can be lost with one replica. */
  readonly batches: readonly Batch[]
  /** The group's revocations from the new epoch on (cumulative: the old epoch's and any new ones); absent: none. */
  readonly revoked?: readonly Revoked[]
}

/** What a voter reports when it promises a ballot: how far it holds each coordinator's sequence, what it holds beyond that, and its highest promise. */
export interface EpochReport {
  readonly have: ReadonlyArray<{ readonly coordinator: string, readonly seq: number }>
  readonly held: readonly Batch[]
  readonly top: Timestamp
  /** In a partially replicated epoch: per coordinator, how many of its batches this voter knows are durable (its entry's count, or evaluated past). */
  readonly durable?: ReadonlyArray<{ readonly coordinator: string, readonly seq: number }>
}

/**
 * The evaluation cursor a replica persists with every settled run: where it
 * stands in timestamp order, how many thunks it evaluated, the rolling digest
 * state, and per coordinator the next batch and the next thunk in it.
 */
export interface Cursor {
  readonly frontier: Timestamp
  readonly last: Timestamp
  readonly count: number
  readonly digest: [number, number, number]
  /** Coordinator → the seq of the next batch to evaluate. */
  readonly evalNext: Readonly<Record<string, number>>
  /** Coordinator → the index of the next thunk to evaluate in that batch (absent: 0). */
  readonly evalIndex?: Readonly<Record<string, number>>
  /** The epoch whose sequences `evalNext` counts in (absent: the genesis epoch). */
  readonly epoch?: number
  /**
   * The StateDigest of every value below `frontier` (not the exactly-once
   * records: replicas collect those at different moments),
   * kept per run in O(keys written) (absent: not known, a cursor written
   * before it existed). A replica checks its store against it when it opens.
   */
  readonly state?: readonly [number, number]
  /** A partitioned group's replica: the partitions whose state it has (absent: every one). */
  readonly holding?: readonly number[]
  /**
   * A partitioned group's replica: the StateDigest of each partition it
   * holds values of, as [partition, lane, lane] (they add up to `state`), so
   * each partition's replicas can vouch for a snapshot's part (part-votes.ts).
   */
  readonly parts?: ReadonlyArray<readonly [number, number, number]>
}

/** A voter's durable frontier and collection point (as in `dur`), passed down the tree. */
export interface DurableReport { readonly voter: string, readonly durable: Timestamp, readonly gc: Timestamp }

/** A voter's digest checkpoint (as in `ck`), passed down the tree. */
export interface CheckpointReport { readonly voter: string, readonly count: number, readonly digest: string }
