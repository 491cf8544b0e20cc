export * from './errors.js'
export { hash64, Hasher } from './hash.js'
export { sourceFingerprint } from './fingerprint.js'
export { canonical, checkValue, cloneValue } from './value.js'
export type { Value } from './value.js'
export {
  TS_ZERO, TS_INFINITY, TIMESTAMP_LENGTH, TimestampMinter, makeTimestamp, timestampSuccessor, parseTimestamp, timestampMs, isTimestamp,
  compareTimestamps, maxTimestamp, minTimestamp, timestampToBytes, timestampFromBytes, peerTag
} from './timestamp.js'
export type { Timestamp, TimestampParts } from './timestamp.js'
export { createRegistry, resolveProcedure, declaredKeys, evaluate } from './procedures.js'
export type { Tx, KeySets, Procedure, ProcedureMap, RegisteredProcedure, ProcedureRegistry, RegistryInit, Write, Evaluation, EvaluateOptions } from './procedures.js'
export type {
  Role, GroupConfig, Thunk, Outcome, TxnResult, SubmitRequest, WatermarkEntry, ReadConsistency, ReadResult
} from './types.js'
export type { Message, MessageType } from './messages.js'
export { validateMessage } from './validate.js'
export type { MessageLimits } from './validate.js'
export type { Store, StoreBatch, Settlement, Version, Durability, GcResult, StoreSnapshot } from './store.js'
export { MemoryStore, checkBatch } from './memory-store.js'
export type { MemoryStoreInit } from './memory-store.js'
export { WatermarkTable } from './watermark.js'
export { Peer } from './peer.js'
export { storeApplier, encodeRecord, decodeRecord } from './apply.js'
export type { RunApplier, AppliedRun, Cursor, ApplierInit, TxnRecord } from './apply.js'
export type { AppliedEvent, Divergence, PeerInit, PeerStatus, Clock, Logger, CallOptions, ReadOptions } from './peer.js'
export { reconnoiter } from './reconnaissance.js'
export type { ReconnaissanceInit, ReconnaissanceTarget } from './reconnaissance.js'
export * as constants from './constants.js'
