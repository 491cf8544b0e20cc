import * as C from '../constants.js'
import type { Batch, Thunk } from '../types.js'
import { batchStatement } from '../batch-signing.js'
import { count, emit } from './emit.js'
import { isInstalling, isSealed, type PeerState, type Stream } from './state.js'

/**
 * A coordinator's open batch: the thunks it minted since it last sealed one.
 * It is sealed whenever the local writer is free (replica.ts), so an idle
 * voter sends each submission alone and a busy one in batches that grow
 * with the load, up to a cap.
 */

/** Most thunks in one batch. */
export const MAX_BATCH_THUNKS = 1024
/** A batch is sealed once its arguments reach about this many bytes (well below a 4 MiB frame). */
export const MAX_BATCH_BYTES = 1 << 20

/**
 * Seals the open thunks into this voter's next batch and queues it for the
 * writer (the caller starts it).
 */
export function sealOpen (s: PeerState): void {
  const coordinator = s.current.coordinator
  if (coordinator.open.length === 0) return
  if (isSealed(s) || isInstalling(s)) {
    deferOpen(s)
    return
  }
  const epoch = s.current.epoch
  const seq = coordinator.nextSeq++
  const thunks: Thunk[] = coordinator.open.map((o, index) => ({ ...o, epoch, coordinator: s.id, seq, index }))
  coordinator.open = []
  coordinator.openBytes = 0
  const batch: Batch = { epoch, coordinator: s.id, seq, thunks }
  coordinator.inflight.set(seq, { batch, acks: new Set(), mintedAt: s.now, sentAt: s.now, tries: 0 })
  count(s, 'batches')
  // Signed, then persisted here before anyone else sees it, so a restart never reuses its sequence number.
  ;(s.current.streams.get(s.id) as Stream).receiving.add(seq)
  const statement = batchStatement(s.config.groupId, batch) as Uint8Array
  s.signing.set(`${epoch}/${seq}`, { batch, signed: undefined })
  emit(s, { t: 'sign-batch', statement, epoch, seq })
}

/**
 * A batch of this coordinator's is signed (or goes unsigned): persisted as it
 * will be sent and served. Batches are persisted in the order they were
 * sealed (a later one whose signature came first waits), so a crash never
 * leaves a persisted batch above one that was not.
 */
export function onBatchSigned (s: PeerState, epoch: number, seq: number, sig: string | undefined): void {
  const pending = s.signing.get(`${epoch}/${seq}`)
  if (pending === undefined || pending.signed !== undefined) return
  pending.signed = sig === undefined ? pending.batch : { ...pending.batch, sig }
  for (const [at, p] of s.signing) {
    if (p.signed === undefined) break
    s.signing.delete(at)
    const e = s.epochs.get(p.batch.epoch)?.coordinator.inflight.get(p.batch.seq)
    if (e !== undefined && e.batch === p.batch) e.batch = p.signed
    s.persistQueue.push(p.signed)
  }
}

/** Open thunks that can no longer go into this epoch (it is being sealed or replaced) wait for the next one, as submissions. */
export function deferOpen (s: PeerState): void {
  const coordinator = s.current.coordinator
  for (const o of coordinator.open) {
    if (s.minted.get(o.clientTxnId) === o.ts) s.minted.delete(o.clientTxnId)
    s.deferred.set(o.clientTxnId, { clientTxnId: o.clientTxnId, procedure: o.procedure, hash: o.hash, args: o.args, firstAt: o.firstAt, ...(o.caller === undefined ? {} : { caller: o.caller }) })
  }
  coordinator.open = []
  coordinator.openBytes = 0
}

/** Splits batches into write messages of at most DEFAULT_WRITE_BATCH thunks each (a batch is never split). */
export function writeChunks (batches: readonly Batch[]): Batch[][] {
  const chunks: Batch[][] = []
  let chunk: Batch[] = []
  let thunks = 0
  for (const b of batches) {
    if (chunk.length > 0 && thunks + b.thunks.length > C.DEFAULT_WRITE_BATCH) {
      chunks.push(chunk)
      chunk = []
      thunks = 0
    }
    chunk.push(b)
    thunks += b.thunks.length
  }
  if (chunk.length > 0) chunks.push(chunk)
  return chunks
}
