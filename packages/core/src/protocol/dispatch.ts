import { PermissionDeniedError, errorFromInfo } from '../errors.js'
import { onSpan, onWatermarkWanted } from './feeds.js'
import type { Message } from '../messages.js'
import { validateMessage } from '../validate.js'
import { onConfirm, onConfirmed } from './confirm.js'
import { handleSubmit, onAck } from './coordinator.js'
import { compareCheckpoint } from './divergence.js'
import { mergeRelayed, mergeWatermark, watermarkEntries } from './promise.js'
import { onPartRead, onTimestamp, readsConfirmed, startRead } from './reads.js'
import { onAccept, onPrepare } from './reconfig/acceptor.js'
import { tellStale } from './reconfig/epoch-news.js'
import { onDecided } from './reconfig/install.js'
import { onRevokeAnswer, onRevokeRequest } from './reconfig/revoke.js'
import { revokedPeer } from './reconfig/revoked.js'
import { heardFrom } from './reconfig/failure-detector.js'
import { onAccepted, onNack, onPromise } from './reconfig/proposer.js'
import { acceptBatch, serveGap } from './replica.js'
import { lacks, onForwardedWrite, onTreeEntries } from './forwarded.js'
import { inTree, notInTree, onPlace, onTreeHello, passDown, passesDown } from './tree.js'
import type { Batch } from '../types.js'
import { onDurableReport, tellDurable } from './horizon.js'
import { onPartSnapshotVote, onSnapshotChunk, onSnapshotDeclined, onSnapshotVote } from './snapshot.js'
import { onPartStateRequest } from './part-votes.js'
import { onSnapshotRequest } from './snapshot-export.js'
import { onStateRequest } from './state-votes.js'
import { noteWork } from './schedule.js'
import { noteQuiet } from './quiesce.js'
import { noteObserverParts, onForwarded, onForwardRequest, onResultRequest, onResults } from './partitions.js'
import { kickEvaluator } from './evaluator.js'
import { rejectWaiters, resolveWaiters, settleWaiter } from './requests.js'
import { count, errorInfo, log, send } from './emit.js'
import { isVoterOfKnownEpoch, roleOf, type PeerState } from './state.js'

/**
 * Handles a message from a peer. Malformed or out-of-role input is dropped
 * and counted; nothing a peer sends can throw out of here.
 */
export function receive (s: PeerState, from: string, raw: unknown): void {
  if (s.phase === 'closed') return
  let m: Message
  try {
    m = validateMessage(raw, { maxValueBytes: s.options.maxValueBytes })
  } catch (err) {
    count(s, 'invalid')
    log(s, 'invalid-message', { from, error: (err as Error).message })
    refuseInvalid(s, from, raw, err as Error)
    return
  }
  try {
    dispatch(s, from, m)
  } catch (err) {
    count(s, 'handler-error')
    log(s, 'handler-error', { from, type: m.t, error: errorInfo(err).message })
  }
}

/**
 * A submission (or a revoke request, or a read) that does not validate
 * (arguments too large or not a value, too many keys, a field missing) is
 * answered, to its sender, with the named refusal when it names a
 * clientTxnId (reqId) to answer under: the caller learns now why, rather
 * than "unknown outcome" or a timeout. Anything else invalid is dropped.
 */
function refuseInvalid (s: PeerState, from: string, raw: unknown, err: Error): void {
  const rv = raw as { t?: unknown, reqId?: unknown } | null
  const reqId = typeof rv?.reqId === 'string' && rv.reqId.length > 0 && rv.reqId.length <= 256 ? rv.reqId : undefined
  if (rv?.t === 'revoke' && reqId !== undefined) {
    send(s, from, { t: 'revoke-rep', reqId, error: { name: 'InvalidMessageError', message: err.message } })
    return
  }
  if (rv?.t === 'read' && reqId !== undefined) {
    count(s, 'read-invalid-refused')
    send(s, from, { t: 'read-rep', reqId, error: { name: 'InvalidMessageError', message: err.message } })
    return
  }
  const req = (raw as { t?: unknown, req?: { clientTxnId?: unknown } } | null)
  if (req?.t !== 'submit' || typeof req.req !== 'object' || req.req === null) return
  const id = req.req.clientTxnId
  if (typeof id !== 'string' || id.length === 0 || id.length > 256) return
  const cause = err.cause instanceof Error && (err.cause.name === 'ValueTooLargeError' || err.cause.name === 'InvalidValueError') ? err.cause : undefined
  count(s, 'submit-invalid-refused')
  send(s, from, { t: 'submit-rep', clientTxnId: id, error: { name: cause?.name ?? err.name, message: err.message } })
}

/** One handler per message type. */
export function dispatch (s: PeerState, from: string, m: Message): void {
  if (s.current.voters.includes(from)) {
    heardFrom(s, from)
    noteQuiet(s, from, m)
  }
  // Heartbeats (watermark entries and asks for them, digests, hellos but a new candidate's) are not work; everything else keeps the peer busy a while.
  if (m.t === 'hello' ? m.candidate === true && !s.candidates.has(from) : m.t !== 'wm' && m.t !== 'wmr' && m.t !== 'tw' && m.t !== 'wm-want' && m.t !== 'ck' && m.t !== 'dur') noteWork(s)
  switch (m.t) {
    case 'write':
      onWrite(s, from, m)
      break
    case 'gap-rep':
      // The tree parent's answer (not a voter's): its batches are checked as forwarded ones are (forwarded.ts).
      if (from === s.tree.parent?.id && !s.current.voters.includes(from) && inTree(s)) {
        onForwardedWrite(s, from, m.batches)
        break
      }
      if (m.gone !== undefined && s.current.voters.includes(from)) noteGone(s, m.gone)
      for (const b of m.batches) {
        // Gaps are asked of voters only, so only a voter's answer is taken.
        const record = s.epochs.get(b.epoch)
        if (record === undefined || (!record.voters.includes(from) && !s.current.voters.includes(from))) count(s, 'gap-from-non-voter')
        else acceptBatch(s, b, from)
      }
      if (m.span !== undefined) onSpan(s, from, m.span, true, m.batches)
      break
    case 'ack':
      mergeWatermark(s, from, m.wm)
      onAck(s, from, m.epoch, m.seqs)
      break
    case 'wm':
      mergeWatermark(s, from, m.wm)
      if (m.span !== undefined) onSpan(s, from, m.span, false, [])
      break
    case 'wmr':
      mergeRelayed(s, from, m.wm)
      break
    case 'gap-req':
      // A voter serves any member; an observer, its children in the tree only.
      if (roleOf(s) === 'voter' || (s.tree.children.has(from) && m.h === undefined)) serveGap(s, from, m.coordinator, m.epoch, m.from, m.to, m.h)
      else count(s, 'gap-req-refused')
      break
    case 'submit':
      if (revokedPeer(s.config, from)) {
        count(s, 'revoked-refused')
        settleWaiter(s, { kind: 'remote', to: from }, m.req.clientTxnId, undefined, new PermissionDeniedError(`${from} was revoked from this group`))
      } else if (s.options.mayCall(from)) {
        handleSubmit(s, m.req, { kind: 'remote', to: m.replyTo })
      } else {
        // A member whose role does not include calling (a reader): refused here, before anything is minted.
        count(s, 'submit-refused')
        settleWaiter(s, { kind: 'remote', to: from }, m.req.clientTxnId, undefined, new PermissionDeniedError(`${from} may not call procedures in this group (its invite's role, or its invite was revoked)`))
      }
      break
    case 'submit-rep':
      if (m.result !== undefined) resolveWaiters(s, m.clientTxnId, m.result)
      else if (m.error !== undefined && m.error.name !== 'QuorumUnavailableError') rejectWaiters(s, m.clientTxnId, errorFromInfo(m.error))
      break
    case 'read':
      if (!revokedPeer(s.config, from)) startRead(s, { kind: 'remote', to: m.replyTo, reqId: m.reqId }, m.keys, m.consistency, undefined, m.range, m.at)
      else count(s, 'revoked-refused')
      break
    case 'ts-req':
      if (roleOf(s) === 'voter' && s.phase !== 'failed') startRead(s, { kind: 'timestamp', to: from, reqId: m.reqId }, [], 'strict')
      break
    case 'confirm':
      onConfirm(s, from, m.epoch, m.round)
      break
    case 'confirmed':
      readsConfirmed(s, onConfirmed(s, from, m.epoch, m.round))
      break
    case 'ts-rep':
      onTimestamp(s, from, m.reqId, m.ts)
      break
    case 'ck':
      compareCheckpoint(s, from, m.count, m.digest, m.h)
      break
    case 'hello':
      if (!revokedPeer(s.config, from)) {
        onHello(s, from, m.epoch, m.candidate)
        noteObserverParts(s, from, m.parts)
        if (m.tree !== undefined) onTreeHello(s, from, m.tree)
        else if (roleOf(s) === 'voter') notInTree(s, from)
      }
      break
    case 'place':
      onPlace(s, from, m.parent, m.addrs)
      break
    case 'tw':
      onTreeEntries(s, from, m)
      break
    case 'revoke':
      onRevokeRequest(s, { kind: 'remote', to: from, reqId: m.reqId }, m.targets)
      break
    case 'revoke-rep':
      onRevokeAnswer(s, from, m.reqId, m.epoch, m.error)
      break
    case 'rc-prepare':
      onPrepare(s, from, m.epoch, m.ballot)
      break
    case 'rc-accept':
      onAccept(s, from, m.epoch, m.ballot, m.value)
      break
    case 'rc-promise':
      onPromise(s, from, m.epoch, m.ballot, m.accepted, m.report)
      break
    case 'rc-accepted':
      onAccepted(s, from, m.epoch, m.ballot, m.sig)
      break
    case 'rc-nack':
      onNack(s, m.epoch, m.ballot)
      break
    case 'rc-decided':
      onDecided(s, from, m.value, m.proof)
      break
    case 'rc-fetch':
      if (m.epoch < s.current.epoch) tellStale(s, from, m.epoch, true)
      break
    case 'dur':
      onDurableReport(s, from, m.durable, m.gc)
      break
    case 'snap-req':
      onSnapshotRequest(s, from, m.id, m.chunk)
      break
    case 'st-req':
      onStateRequest(s, from, m.count, m.h)
      break
    case 'st-rep':
      onSnapshotVote(s, from, m.count, m.state)
      break
    case 'snap-chunk':
      onSnapshotChunk(s, from, m)
      break
    case 'snap-no':
      onSnapshotDeclined(s, from, m.id)
      break
    case 'read-rep':
      onPartRead(s, from, m.reqId, m.result, m.error)
      break
    case 'fwd':
      if (onForwarded(s, from, m.items)) kickEvaluator(s)
      break
    case 'fwd-req':
      onForwardRequest(s, from, m.items)
      break
    case 'res':
      onResults(s, from, m.items)
      break
    case 'res-req':
      onResultRequest(s, from, m.stamps)
      break
    case 'wm-want':
      onWatermarkWanted(s, from, m.ts, watermarkEntries)
      break
    case 'pst-req':
      onPartStateRequest(s, from, m.at, m.parts)
      break
    case 'pst-rep':
      onPartSnapshotVote(s, from, m.at, m.states)
      break
  }
}

function onWrite (s: PeerState, from: string, m: Extract<Message, { t: 'write' }>): void {
  // Only voters coordinate; an observer takes batches another member passes on if their signatures check out.
  const newer = m.batches.some(b => b.epoch > s.current.epoch)
  if (!isVoterOfKnownEpoch(s, from) && roleOf(s) !== 'voter' && !newer) {
    const stale = m.batches.find(b => b.epoch < s.current.epoch && s.epochs.get(b.epoch)?.voters.includes(from) !== false)
    if (stale !== undefined) tellStale(s, from, stale.epoch)
    onForwardedWrite(s, from, m.batches)
    return
  }
  if (!isVoterOfKnownEpoch(s, from) && !newer) {
    count(s, 'write-from-non-voter')
    // A voter voted out in an epoch it has not heard of: tell it.
    const stale = m.batches.find(b => b.epoch < s.current.epoch)
    if (stale !== undefined) tellStale(s, from, stale.epoch)
    return
  }
  mergeWatermark(s, from, m.wm)
  // Batches new here go on down the tree (a voter's children, an observer's); another coordinator's, passed on by a voter (the tree's root), are checked as any passed on.
  const fresh: Batch[] = []
  const passed: Batch[] = []
  const downs = passesDown(s)
  for (const b of m.batches) {
    const record = s.epochs.get(b.epoch)
    // A voter of the batch's epoch coordinates it, and only its own.
    if (record !== undefined && !record.voters.includes(from)) count(s, 'write-from-non-voter')
    else if (b.coordinator !== from && roleOf(s) !== 'voter') passed.push(b)
    else if (b.coordinator !== from) count(s, 'write-not-own-refused')
    else if (b.epoch < s.evaluatingEpoch || (record !== undefined && record.floor !== undefined)) tellStale(s, from, b.epoch)
    else {
      if (downs && lacks(s, b)) fresh.push(b)
      acceptBatch(s, b, from)
    }
  }
  passDown(s, fresh)
  if (passed.length > 0) onForwardedWrite(s, from, passed)
  if (m.span !== undefined) onSpan(s, from, m.span, false, m.batches)
}

/** An observer (or a candidate) announces itself to the voters. */
function onHello (s: PeerState, from: string, epoch: number | undefined, candidate: boolean | undefined): void {
  if (epoch !== undefined && epoch < s.current.epoch) tellStale(s, from, epoch)
  if (roleOf(s) === 'voter' && !s.current.voters.includes(from)) {
    if (!s.observers.has(from)) tellDurable(s, from)
    s.observers.set(from, s.now)
    if (candidate === true && epoch !== undefined) s.candidates.set(from, { seen: s.now, epoch })
    else s.candidates.delete(from)
  }
}

/** A voter collected the start of a range this replica asked for: if it still needs it, a snapshot is the way on. */
function noteGone (s: PeerState, gone: { readonly coordinator: string, readonly epoch: number, readonly from: number }): void {
  const stream = s.epochs.get(gone.epoch)?.streams.get(gone.coordinator)
  if (gone.epoch < s.evaluatingEpoch || stream === undefined || stream.evalNext > gone.from || stream.held.has(gone.from)) return
  s.history.gapGoneAt = s.now
}
