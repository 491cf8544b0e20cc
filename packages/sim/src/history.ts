/**
 * The history format shared by the simulator's workloads and the checker.
 *
 * A history is what clients observed (invocations and completions with virtual
 * real times) plus what every replica holds at the end of a run, after the
 * network healed and the group went quiet. The checker trusts nothing the
 * protocol claims about order: it rebuilds dependencies from values.
 */

/** One micro-operation of a list-append transaction (Elle's model). */
export type ListMop =
  | { readonly f: 'append'; readonly key: string; readonly value: number }
  /** `value` is the list read, or `null` while unknown (not completed). */
  | { readonly f: 'r'; readonly key: string; readonly value: readonly number[] | null }

/**
 * `ok`: completed and acknowledged (effects applied exactly once).
 * `fail`: definitely not applied (refused before it had a timestamp, or a
 *   deterministic logical abort: for list-append transactions this means no
 *   effect at all).
 * `info`: outcome unknown to the client (timed out); it may or may not have
 *   been applied, but at most once.
 */
export type Outcome = 'ok' | 'fail' | 'info'

interface OpBase {
  /** Unique within the history. */
  readonly id: number
  /** The client that issued it; a client has at most one op in flight. */
  readonly process: number
  /** Virtual time (ms) of the invocation. */
  readonly invokeTime: number
  /** Virtual time (ms) of the completion; `undefined` when outcome is `info`. */
  readonly completeTime?: number | undefined
  readonly outcome: Outcome
  /**
   * Whether real-time order must hold for this op (strict reads and all
   * read-write transactions). Snapshot reads are serializable but may be
   * stale, so they take no real-time edges.
   */
  readonly realTime: boolean
}

/** A list-append transaction: appends unique integers, reads whole lists. */
export interface ListOp extends OpBase {
  readonly kind: 'list'
  readonly mops: readonly ListMop[]
}

/** A bank transfer; the total of all accounts is invariant. */
export interface TransferOp extends OpBase {
  readonly kind: 'transfer'
  readonly from: string
  readonly to: string
  readonly amount: number
}

/** A read of every bank account in one transaction. */
export interface BankReadOp extends OpBase {
  readonly kind: 'bank-read'
  /** Balances read (all accounts), present when outcome is `ok`. */
  readonly balances?: Readonly<Record<string, number>> | undefined
}

export type Op = ListOp | TransferOp | BankReadOp

/** What one replica holds once the run is over and the group is quiet. */
export interface ReplicaFinal {
  readonly peer: string
  /** Final value of every list key (missing key = empty list). */
  readonly lists: Readonly<Record<string, readonly number[]>>
  /** Final balance of every bank account. */
  readonly balances: Readonly<Record<string, number>>
  /** Digest of the replica's whole key/value state. */
  readonly stateDigest: string
  /** Rolling digest of every evaluation result, and how far evaluation got. */
  readonly resultDigest: string
  readonly evaluatedThrough: string
  /**
   * A replica of some partitions: the list keys and accounts it holds, and
   * a tag of its partitions (replicas compare digests only with the same
   * tag, and values only where both hold them). Absent: it holds everything.
   */
  readonly holds?: { readonly lists: readonly string[], readonly accounts: readonly string[], readonly tag: string } | undefined
}

export interface History {
  readonly ops: readonly Op[]
  /** Expected total over all bank accounts (initial balances summed). */
  readonly bankTotal?: number | undefined
  /** Account names of the bank workload. */
  readonly accounts?: readonly string[] | undefined
  /**
   * Final replica states. Replicas listed here must have reached the same
   * evaluation point; the checker flags any digest difference.
   */
  readonly finals: readonly ReplicaFinal[]
}

export type ViolationKind =
  | 'cycle' // dependency cycle (ww/wr/rw/real-time): not strictly serializable
  | 'incompatible-order' // two reads of a key that are not prefixes of one another
  | 'aborted-read' // a read saw a value written by a failed transaction (G1a)
  | 'phantom-value' // a read saw a value no transaction appended
  | 'duplicate' // a value applied twice
  | 'lost' // an acknowledged write missing from the final state
  | 'internal' // a transaction's read contradicts its own earlier append/read
  | 'bank-total' // a bank read or the final state whose total is wrong
  | 'bank-negative' // a negative balance
  | 'divergence' // replicas whose digests or states differ after quiescence
  | 'unexpected-abort' // a workload transaction aborted with an error its procedure never raises
  | 'liveness' // the healed group did not quiesce in time, or a peer stopped
  | 'invariant' // a peer's state broke `invariants` after a step

export interface Violation {
  readonly kind: ViolationKind
  readonly message: string
  /** Ids of the ops involved, when there are any. */
  readonly ops?: readonly number[] | undefined
}
