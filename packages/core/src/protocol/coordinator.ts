import type { KeyRange } from '../key-range.js'
import { runRules } from '../apply.js'
import { ClockSkewError, InvalidValueError, PartitionRangeError, PeerClosedError, RateLimitedError } from '../errors.js'
import { timestampMs } from '../timestamp.js'
import { declaredKeys, resolveProcedure } from '../procedures.js'
import type { Batch, SubmitRequest } from '../types.js'
import { checkValue } from '../value.js'
import { scheduleFlush, watermarkEntries } from './promise.js'
import { MAX_BATCH_BYTES, MAX_BATCH_THUNKS, sealOpen, writeChunks } from './batcher.js'
import { startWrite } from './replica.js'
import { addWaiter, forward, rejectWaiters, settleWaiter } from './requests.js'
import { count, send } from './emit.js'
import { isInstalling, isSealed, roleOf, type PeerState, type Waiter } from './state.js'
import { partitionOfRange, type PartitionSpec } from '../partition.js'
import { copyFor, isDurable, partialEpoch, setHome } from './partial.js'

/**
 * The coordinator side of the S-phase: a voter checks a submission and mints
 * its timestamp into the open batch; the open batch is sealed (given the next
 * sequence number) whenever the local writer is free, so one submission at
 * a time goes out alone when the peer is idle and batches grow by themselves
 * under load. A sealed batch is persisted here, sent to every voter and
 * observer, and retransmitted until a majority acked it.
 */

/** A submission that passed its checks: the procedure's canonical name and hash, its declared keys, and its arguments' encoded size. */
interface Checked { readonly procedure: string, readonly hash: string, readonly reads: readonly string[], readonly writes: readonly string[], readonly ranges?: readonly KeyRange[], readonly bytes: number }

export function handleSubmit (s: PeerState, submitted: SubmitRequest, waiter: Waiter): void {
  // The peer a submission enters by dates it when its client did not (retries through other peers carry the date).
  const req = submitted.firstAt === undefined ? { ...submitted, firstAt: Math.floor(s.now) } : submitted
  if (s.phase === 'closed' || s.phase === 'failed') {
    settleWaiter(s, waiter, req.clientTxnId, undefined, new PeerClosedError(`peer ${s.id} is not serving`))
    return
  }
  // Checked here on every peer (an observer too, before forwarding), so bad input fails at once with a named error.
  let checked
  try {
    checked = checkSubmit(s, req)
  } catch (err) {
    count(s, 'submit-refused')
    settleWaiter(s, waiter, req.clientTxnId, undefined, err as Error)
    return
  }
  if (roleOf(s) === 'voter' && !takeCall(s)) {
    count(s, 'rate-limited')
    settleWaiter(s, waiter, req.clientTxnId, undefined, new RateLimitedError(`voter ${s.id} takes at most ${s.options.maxCallsPerSec} calls a second in this group; call again later`))
    return
  }
  addWaiter(s, req.clientTxnId, waiter)
  // A client's call of another replica set's keys goes to a voter of that set (partial.ts); one from a voter is minted here.
  const home = waiter.kind === 'remote' && !s.current.voters.includes(waiter.to) && roleOf(s) === 'voter' && !isSealed(s) && !isInstalling(s) ? setHome(s, checked, req.clientTxnId) : undefined
  if (home !== undefined) {
    count(s, 'routed-to-set')
    send(s, home, { t: 'submit', req, replyTo: s.id })
    return
  }
  route(s, req, checked)
}

/** Takes a call from the voter's bucket (refilled at maxCallsPerSec, holding a second's worth); false when it is empty. */
function takeCall (s: PeerState): boolean {
  const rate = s.options.maxCallsPerSec
  if (rate === Infinity) return true
  const b = s.calls
  b.tokens = Math.min(rate, b.tokens + (s.now - b.at) * rate / 1000)
  b.at = s.now
  if (b.tokens < 1) return false
  b.tokens--
  return true
}

function checkSubmit (s: PeerState, req: SubmitRequest): Checked {
  if (req.firstAt !== undefined && !(Number.isSafeInteger(req.firstAt) && req.firstAt >= 0)) throw new InvalidValueError(`firstAt must be milliseconds since the epoch, an integer; got ${String(req.firstAt)}`)
  const proc = resolveProcedure(s.registry, req.procedure, req.hash)
  const bytes = checkValue(req.args, s.options.maxValueBytes)
  const keys = declaredKeys(proc, req.args)
  // In a partitioned group a declared range must lie in one scope (every replica would abort it anyway).
  if (s.config.partitions !== undefined && keys.ranges !== undefined && keys.ranges.some(r => partitionOfRange(r, s.config.partitions as PartitionSpec) === undefined)) {
    throw new PartitionRangeError(`${proc.name} declared a key range that spans more than one scope of the group's partitions; declare one range per scope`)
  }
  return { procedure: proc.name, hash: proc.hash, ...keys, bytes }
}

/** Sends a checked submission on its way: an observer forwards it, a voter mints it (after an epoch change if sealed). */
export function route (s: PeerState, req: SubmitRequest, checked?: Checked): void {
  if (roleOf(s) !== 'voter') {
    forward(s, req)
    return
  }
  if (isSealed(s) || isInstalling(s)) {
    s.deferred.set(req.clientTxnId, req)
    return
  }
  if (s.minted.has(req.clientTxnId)) return
  // Exactly once without a store read here: the applier's record makes a
  // retry of a decided clientTxnId a no-op answered with its first outcome.
  let init = checked
  try {
    init ??= checkSubmit(s, req)
  } catch (err) {
    rejectWaiters(s, req.clientTxnId, err as Error)
    return
  }
  mint(s, req, init)
}

function mint (s: PeerState, req: SubmitRequest, init: Checked): void {
  const coordinator = s.current.coordinator
  const ts = s.minter.mint(s.now)
  const firstAt = req.firstAt ?? timestampMs(ts)
  // Exactly-once past a collected record rests on `firstAt <= ts + txnSkewMs` (see refusedAt).
  const skew = firstAt - timestampMs(ts)
  const { txnSkewMs } = runRules(s.config)
  if (skew > txnSkewMs) {
    count(s, 'submit-refused')
    rejectWaiters(s, req.clientTxnId, new ClockSkewError(`${req.clientTxnId} says it was first submitted ${skew} ms ahead of this voter's clock, more than the group's txnSkewMs (${txnSkewMs}): the submitting client's clock is wrong`))
    return
  }
  s.minted.set(req.clientTxnId, ts)
  coordinator.open.push({ ts, procedure: init.procedure, hash: init.hash, args: req.args, reads: init.reads, writes: init.writes, ...(init.ranges === undefined ? {} : { ranges: init.ranges }), clientTxnId: req.clientTxnId, firstAt, ...(req.caller === undefined ? {} : { caller: req.caller }) })
  coordinator.openBytes += init.bytes + 256
  count(s, 'minted')
  if (coordinator.open.length >= MAX_BATCH_THUNKS || coordinator.openBytes >= MAX_BATCH_BYTES) {
    sealOpen(s)
    startWrite(s)
  } else {
    // Sealed at the end of the turn if the writer is free, else when it is (see startWrite).
    scheduleFlush(s)
  }
}

export function onAck (s: PeerState, from: string, epoch: number, seqs: readonly number[]): void {
  if (roleOf(s) !== 'voter' || epoch !== s.current.epoch || !s.current.voters.includes(from)) {
    count(s, 'ack-refused')
    return
  }
  const inflight = s.current.coordinator.inflight
  const firstBefore = inflight.keys().next().value
  const now = s.now
  for (const seq of seqs) {
    const e = inflight.get(seq)
    if (e === undefined) continue
    e.acks.add(from)
    if (isDurable(s, s.current, e)) {
      inflight.delete(seq)
      s.srtt += (Math.max(0, now - e.mintedAt) - s.srtt) / 8
    }
  }
  if (inflight.keys().next().value !== firstBefore) {
    s.watermarkDirty = true
    scheduleFlush(s)
  }
}

/** Sends unacked batches again to the voters that have not acked them, backing off per batch. */
export function retransmit (s: PeerState): void {
  const now = s.now
  const rto = Math.max(s.options.writeRetryMs, 3 * s.srtt)
  const inflight = s.current.coordinator.inflight
  // Entries are in mint order and were first sent in that order: if the oldest is not due, none is.
  const oldest = inflight.values().next()
  if (oldest.done === true || (oldest.value.tries === 0 && now - oldest.value.sentAt < rto)) return
  const perVoter = new Map<string, Batch[]>()
  for (const e of inflight.values()) {
    if (now - e.sentAt < Math.min(rto * 2 ** e.tries, 2_000)) continue
    if (!e.acks.has(s.id)) continue // still being persisted locally
    e.sentAt = now
    e.tries++
    const partial = partialEpoch(s, s.current)
    for (const v of s.current.voters) {
      if (e.acks.has(v)) continue
      // In a partially replicated epoch, each voter that stores part of it gets its part.
      const copy = partial ? copyFor(s, e.batch, v) : e.batch
      if (copy === undefined) continue
      let list = perVoter.get(v)
      if (list === undefined) { list = []; perVoter.set(v, list) }
      list.push(copy)
    }
  }
  if (perVoter.size === 0) return
  const wm = watermarkEntries(s)
  for (const [v, batches] of perVoter) {
    count(s, 'retransmit', batches.length)
    for (const chunk of writeChunks(batches)) send(s, v, { t: 'write', batches: chunk, wm })
  }
}

