/**
 * Every error Tideline raises is a class with a stable `name`; callers branch
 * on `err.name`, never on message text.
 */
export class TidelineError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'TidelineError'
  }
}

function named<N extends string> (name: N): new (message: string, options?: ErrorOptions) => TidelineError & { readonly name: N } {
  const Cls = class extends TidelineError {
    constructor (message: string, options?: ErrorOptions) {
      super(message, options)
      this.name = name
    }
  }
  Object.defineProperty(Cls, 'name', { value: name })
  return Cls as unknown as new (message: string, options?: ErrorOptions) => TidelineError & { readonly name: N }
}

/** A read asked for a version older than the replica still holds (below its in-memory version window); read at a newer timestamp. */
export const SnapshotTooOldError = named('SnapshotTooOldError')
/** A fetched snapshot's entries do not add up to the StateDigest its source sent: it is dropped and fetched from another voter. */
export const SnapshotMismatchError = named('SnapshotMismatchError')
/** A store holds data in a layout this version cannot read (written by an older or newer Tideline). */
export const StoreFormatError = named('StoreFormatError')
/** A submitted transaction names a procedure this peer does not know. */
export const UnknownProcedureError = named('UnknownProcedureError')
/** The caller's procedure code differs from the group's pinned version. */
export const ProcedureHashMismatchError = named('ProcedureHashMismatchError')
/** A procedure read or wrote a key it did not declare (a deterministic abort). */
export const UndeclaredKeyError = named('UndeclaredKeyError')
/** A procedure threw (a deterministic abort, same on every replica). */
export const ProcedureError = named('ProcedureError')
/** A value or argument is not structured JSON-like data. */
export const InvalidValueError = named('InvalidValueError')
/** A value or argument encodes to more bytes than allowed. */
export const ValueTooLargeError = named('ValueTooLargeError')
/** A peer sent a message that does not decode or validate; it is dropped. */
export const InvalidMessageError = named('InvalidMessageError')
/** A message came from a peer that is not a member in the needed role. */
export const NotMemberError = named('NotMemberError')
/** A call's caller signature does not hold: someone made the call in another member's name (an abort, the same on every replica). */
export const ForgedCallError = named('ForgedCallError')
/** The member's role does not allow what it asked (a reader's call, for one). */
export const PermissionDeniedError = named('PermissionDeniedError')
/** No quorum answered within the call's timeout; the outcome is unknown, retry with the same clientTxnId. */
export const QuorumUnavailableError = named('QuorumUnavailableError')
/**
 * A retry came more than the group's `txnRetentionMs` after its clientTxnId
 * was first submitted: whether the first attempt took effect is no longer
 * known, and this one is not applied (an abort, the same on every replica).
 */
export const ExpiredTransactionError = named('ExpiredTransactionError')
/** A submission's `firstAt` lies further ahead of the coordinator's clock than the group's `txnSkewMs`: the caller's clock is wrong. */
export const ClockSkewError = named('ClockSkewError')
/** The call was cancelled through its AbortSignal. */
export const AbortError = named('AbortError')
/** A reconnaissance transaction kept finding its reads changed. */
export const ReconnaissanceFailedError = named('ReconnaissanceFailedError')
/**
 * A record in the store failed its check (a bit flip, a torn or misdirected
 * write): the store never answers with it. The protocol does not use it
 * either: a damaged batch is fetched again from other replicas, damaged state
 * (values, exactly-once records, outcomes) is replaced by a snapshot.
 */
export const StoreCorruptionError = named('StoreCorruptionError')
/** The store failed; the peer stops serving rather than diverge. */
export const StoreFailedError = named('StoreFailedError')
/** A signed group document (genesis configuration, invite) is malformed, forged or expired. */
export const InvalidCredentialError = named('InvalidCredentialError')
/** The peer is closed or failed. */
export const PeerClosedError = named('PeerClosedError')
/** A procedure read the wall clock or an unseeded random source inside `run` (a deterministic abort). */
export const NondeterminismError = named('NondeterminismError')
/** Replicas that evaluated the same thunks reached different results (a non-deterministic procedure, or a bug). */
export const DivergenceError = named('DivergenceError')
/** An argument failed its procedure's schema; nothing was submitted. */
export const InvalidArgumentError = named('InvalidArgumentError')
/** The evaluation worker died or failed; the database stops serving rather than diverge. */
export const WorkerFailedError = named('WorkerFailedError')
/** A peer's protocol state broke one of its invariants (a bug; checked in tests and the simulator). */
export const InvariantError = named('InvariantError')
/** The voter took more calls of this group in the last second than its operator allows (`maxCallsPerSec`); nothing was submitted. */
export const RateLimitedError = named('RateLimitedError')
/** A timestamp string does not have the canonical encoding. */
export const InvalidTimestampError = named('InvalidTimestampError')

/** Rebuilds a named error that travelled over the wire as `{ name, message }`. */
export function errorFromInfo (info: { readonly name: string, readonly message: string }): TidelineError {
  const e = new TidelineError(info.message)
  e.name = info.name
  return e
}

/** Names of the errors that a transaction can abort with deterministically. */
export type AbortErrorName =
  | 'UndeclaredKeyError' | 'ProcedureError' | 'NondeterminismError' | 'InvalidValueError' | 'ValueTooLargeError'
  | 'ProcedureHashMismatchError' | 'UnknownProcedureError' | 'TransactionAbort' | 'ExpiredTransactionError' | 'ClockSkewError'
  | 'ForgedCallError' | 'PermissionDeniedError' | 'PartitionRangeError'

/** A procedure in a partitioned group declared a key range spanning more than one scope: it is aborted on every replica, and refused by its coordinator. */
export const PartitionRangeError = named('PartitionRangeError')

/** A replica was asked for its part of a partitioned read at a timestamp and does not hold that partition (the reader asks another of its replicas). */
export const PartitionNotHeldError = named('PartitionNotHeldError')
