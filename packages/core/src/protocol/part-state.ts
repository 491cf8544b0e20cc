import { Placement } from '../partition.js'
import type { ForwardedReads } from '../run-rules.js'
import type { Timestamp } from '../timestamp.js'
import type { PartitionSpec, Thunk, TxnResult } from '../types.js'
import type { Value } from '../value.js'
import type { RangeRead } from './read-state.js'
import type { Span } from '../messages.js'

/** A partitioned replica's evaluation state (partitions.ts). */
export interface PartState {
  readonly spec: PartitionSpec
  /** The partitions a non-voter follows (all of them unless it said otherwise). */
  readonly declared: ReadonlySet<number>
  /** Observers that follow only some partitions (their hello said which): a placed replica forwards to them too. */
  readonly observerParts: Map<string, ReadonlySet<number>>
  /** Those observers by the partitions they follow: what this voter still owes each group of them (feeds.ts). */
  readonly feeds: Map<string, Feed>
  /**
   * The partitions whose state this replica has at its frontier (Cursor.holding):
   * what it evaluates and forwards in the epoch it evaluates. A voter placed
   * on a partition it does not have leaves it to the others.
   */
  have: Set<number>
  /** Reads forwarded to this replica, by thunk, for thunks it has not evaluated yet. */
  readonly inbox: Map<Timestamp, ForwardedReads[]>
  /** The thunk this replica waits on forwarded reads for (its own already forwarded), and since when. */
  waiting: { readonly thunk: Thunk, readonly since: number, asked: number, forwarded: boolean } | undefined
  /** Recent reads this replica forwarded, to answer peers that missed them (fwd-req). */
  readonly made: Map<Timestamp, ForwardedReads>
  /** Thunks whose reads this replica forwarded before its run was written (`run-forwards`): not sent again when the run settles. */
  readonly early: Set<Timestamp>
  /** Peers that asked for a thunk's forwarded reads before this replica reached it. */
  readonly wanted: Map<Timestamp, Set<string>>
  /** Thunks this voter coordinated and did not evaluate: their results come from a replica that does. */
  readonly awaiting: Map<Timestamp, { readonly thunk: Thunk, readonly since: number, asked: number }>
  /** Recent results this replica evaluated, to answer coordinators that ask (res-req). */
  readonly results: Map<Timestamp, { readonly clientTxnId: string, readonly result: TxnResult }>
  /** Coordinators that asked for a thunk's result before this replica evaluated it. */
  readonly resultWanted: Map<Timestamp, Set<string>>
  /**
   * Where the partitions live: on the genesis voters (placed once, by
   * rendezvous hashing). A voter voted out keeps evaluating its partitions
   * as an observer; a voter added later holds none (moving a partition to
   * it, by a partition snapshot, is not built yet).
   */
  readonly placement: Placement
  /** Reads split by partition (part-reads.ts), by read id. */
  readonly reads: Map<number, SplitRead>
  /** A coordinator's log of which sets its batches touched, in a partially replicated epoch (partial.ts). */
  setLog: SetLog | undefined
  /** Each partition's StateDigest now (Cursor.parts), and after each thunk that changed it (part-votes.ts). */
  digests: Map<number, readonly [number, number]>
  readonly trail: Map<number, PartTrail>
  /** Frontiers peers asked partitions' digests at before this replica got there: frontier → asker → partitions. */
  readonly stateAsks: Map<Timestamp, Map<string, readonly number[]>>
  /** The vote on the snapshot being fetched, partition by partition. */
  vote: { readonly id: string, readonly at: Timestamp, readonly tallies: Map<number, PartTally> } | undefined
}

/** A partition's digest from `since` on: `base` until the first entry, each entry's from just after its thunk. */
export interface PartTrail {
  since: Timestamp
  base: readonly [number, number]
  readonly entries: Array<[Timestamp, number, number]>
}

/** A voter's view of one feed: what it still owes it. */
export interface Feed {
  readonly parts: ReadonlySet<number>
  /** The newest thunk held here that the feed evaluates: its observers need this voter's entry past it. */
  want: Timestamp
  /** This voter's entry as last sent to the feed, its epoch, and when. */
  sent: Timestamp
  sentEpoch: number
  sentAt: number
  /** Of this coordinator's batches, those that held nothing for the feed and no message has said so yet. */
  pending: Span | undefined
}

/** How a partition's replicas vouched for a snapshot's part. */
export interface PartTally {
  readonly replicas: readonly string[]
  needed: number
  readonly lanes: readonly [number, number]
  readonly agree: Set<string>
  readonly against: Set<string>
  readonly silent: Set<string>
}

/** One partition's part of a read that another replica reads. */
export interface RemotePart {
  readonly p: number
  readonly keys: readonly string[]
  readonly range: RangeRead | undefined
  to: string
  tries: number
  sentAt: number
}

/** A read split by partition, until every part is in. */
export interface SplitRead {
  readonly at: Timestamp
  readonly parts: Map<string, RemotePart>
  local: boolean
  readonly values: Record<string, Value>
  entries: Array<readonly [string, Value]> | undefined
}



const ALL = (spec: PartitionSpec): Set<number> => new Set(Array.from({ length: spec.count }, (_, p) => p))

export function newPartState (spec: PartitionSpec | undefined, declared: readonly number[] | undefined, genesisVoters: readonly string[]): PartState | undefined {
  if (spec === undefined) return undefined
  return {
    spec,
    placement: new Placement(spec, genesisVoters),
    declared: declared === undefined ? ALL(spec) : new Set(declared),
    observerParts: new Map(),
    feeds: new Map(),
    have: new Set(),
    inbox: new Map(),
    waiting: undefined,
    made: new Map(),
    early: new Set(),
    setLog: undefined,
    wanted: new Map(),
    awaiting: new Map(),
    results: new Map(),
    resultWanted: new Map(),
    reads: new Map(),
    digests: new Map(),
    trail: new Map(),
    stateAsks: new Map(),
    vote: undefined
  }
}

/** The coordinator's log of which of its batches touched each set, this epoch: for spans on its writes and `tails` on its entries. */
export interface SetLog {
  readonly epoch: number
  /** The first seq logged (after a restart, earlier ones are not known). */
  readonly from: number
  /** Per set, the seqs with something for it, ascending (trimmed to the last one at or below the published count). */
  readonly seqs: number[][]
  /** Per set, the last seq a write to it has spoken for. */
  readonly said: number[]
}
