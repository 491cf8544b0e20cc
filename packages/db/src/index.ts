export { defineProcedures, registryOf } from './procedures.js'
export type { ProcedureDef, Procedures, ProcedureName, ArgsOf, ResultOf } from './procedures.js'
export { Database, openDatabase } from './database.js'
export { peerIdOf } from '@tideline/net-libp2p/peer'
/** Advanced: the page side of a database worker (a Store and a RunApplier over Comlink), e.g. for benchmarks. */
export { WorkerBackend } from './backend.js'
export { webCryptoCallVerifier } from './call-verifier.js'
export type { OpenOptions, CallOptions, ReadOptions, CallResult, CallPromise, ReadResult, DatabaseStatus, ReconnaissanceOptions } from './database.js'
export { HAND_OVER_GRACE_MS } from './hand-over.js'
export type { HandOverStatus } from './hand-over.js'
export type { LocalResult } from './speculate.js'
export { queryMatcher } from './queries.js'
export type { Query, QueryOptions, Changes, SubscriptionUpdate, SubscriptionCallback } from './queries.js'
export {
  TidelineError, AbortError, QuorumUnavailableError, UnknownProcedureError, ProcedureHashMismatchError, InvalidArgumentError,
  InvalidValueError, ValueTooLargeError, NotMemberError, InvalidCredentialError, PeerClosedError, StoreFailedError, WorkerFailedError,
  ReconnaissanceFailedError, DivergenceError, NondeterminismError, PermissionDeniedError, ForgedCallError
} from '@tideline/core'
export type { Tx, KeySets, DeclaredKeys, Value, Timestamp, Revocation, MemberRole, KeyQuery, KeyRange } from '@tideline/core'
export { inviteDigest, decodeSigned } from '@tideline/net-libp2p/peer'
