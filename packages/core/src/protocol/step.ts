import * as C from '../constants.js'
import { AbortError, QuorumUnavailableError, StoreFailedError } from '../errors.js'
import type { Message } from '../messages.js'
import { retryConfirm } from './confirm.js'
import { handleSubmit, retransmit } from './coordinator.js'
import { dispatch, receive } from './dispatch.js'
import { sendCheckpoint } from './divergence.js'
import type { Effect, Input } from './effects.js'
import { kickEvaluator, onRunApplied } from './evaluator.js'
import { flush, onLeasePersisted, publish, renewLease } from './promise.js'
import { abortRead, onValuesRead, onValuesRefused, startRead, tickReads } from './reads.js'
import { onAcceptorPersisted, onDecisionSigned } from './reconfig/acceptor.js'
import { onDecisionRead, reachOut } from './reconfig/epoch-news.js'
import { onDecisionPersisted, onDecisionVerified } from './reconfig/install.js'
import { detectFailures } from './reconfig/proposer.js'
import { discountStall, forceProposal } from './reconfig/failure-detector.js'
import { expireRevokeWaiters, onRevokeRequest } from './reconfig/revoke.js'
import { askForGaps, onBatchesPersisted, onBatchesRead, startWrite } from './replica.js'
import { onBatchSigned } from './batcher.js'
import { onBatchesVerified, onEntriesVerified } from './forwarded.js'
import { inTree, onEntriesSigned, tickTree, treeHello } from './tree.js'
import { abortWaiter, close, expireWaiters, fail, retryForwards } from './requests.js'
import { errorInfo, log, send, settle } from './emit.js'
import { noteWork } from './schedule.js'
import { heartbeat } from './quiesce.js'
import { collectGarbage, noteDurable, onGcDone, onSynced, reportDurable, syncSettled } from './horizon.js'
import { onScrubbed, onSnapshotImported, onSnapshotStaged, pursueSnapshot } from './snapshot.js'
import { onSnapshotExported, onSnapshotRead } from './snapshot-export.js'
import { roleOf, type PeerState } from './state.js'
import { declaredParts, onForwardRead, onRunForwards, tickPartitions } from './partitions.js'
import { onScrubDone, onStateDamaged, tickScrub } from './damage.js'
import { SYNC_LIVE_LAG_MS } from '../peer-status.js'
import { TS_ZERO, timestampMs } from '../timestamp.js'

/**
 * The protocol as one synchronous function: takes the peer's state, one
 * input and the time, changes the state and returns the effects to carry
 * out, in order. No awaits, promises or store calls happen inside.
 */
export function step (s: PeerState, input: Input, now: number): Effect[] {
  s.now = now
  s.effects = []
  try {
    discountStall(s)
    handle(s, input)
  } catch (err) {
    // A bug in a handler must not leave the peer serving half-updated state.
    fail(s, errorInfo(err))
  }
  const effects = s.effects
  s.effects = []
  return effects
}

function handle (s: PeerState, input: Input): void {
  // Local calls are work (messages are sorted by dispatch); completions are not: what they finish is in flight until then (see isBusy).
  if (input.t === 'submit' || input.t === 'read' || input.t === 'leave' || input.t === 'revoke' || input.t === 'request-epoch-change') noteWork(s)
  // A failed peer (its store failed a write or a sync) is silent, so the others vote it out: no message, tick
  // or completion is handled; its own callers get its failure.
  if (s.phase === 'failed' && input.t !== 'submit' && input.t !== 'read' && input.t !== 'close' && input.t !== 'abort') {
    if (input.t === 'leave' || input.t === 'revoke') settle(s, input.call, undefined, new StoreFailedError(`peer ${s.id} stopped: ${s.failure ?? ''}`))
    return
  }
  switch (input.t) {
    case 'receive': receive(s, input.from, input.message); break
    case 'self': if (s.phase !== 'closed') dispatch(s, s.id, input.message); break
    case 'tick': tick(s); break
    case 'flush':
      // The end of a turn: the open batch is sealed if the writer is free.
      startWrite(s)
      flush(s)
      break
    case 'start':
      log(s, 'recovered', { epoch: s.current.epoch, evaluatingEpoch: s.evaluatingEpoch, frontier: s.frontier, evaluated: s.evaluatedCount, nextSeq: s.current.coordinator.nextSeq })
      kickEvaluator(s)
      break
    case 'submit':
      handleSubmit(s, input.req, { kind: 'local', call: input.call, deadline: s.now + (input.timeoutMs ?? s.options.callTimeoutMs) })
      break
    case 'read': startRead(s, { kind: 'local', call: input.call }, input.keys, input.consistency, input.timeoutMs, input.range); break
    case 'leave': leave(s, input.call, input.timeoutMs); break
    case 'revoke': onRevokeRequest(s, { kind: 'local', call: input.call, deadline: s.now + (input.timeoutMs ?? s.options.callTimeoutMs) }, input.targets); break
    case 'abort':
      if (!abortWaiter(s, input.call) && !abortRead(s, input.call) && s.leaves.delete(input.call)) settle(s, input.call, undefined, new AbortError('aborted'))
      break
    case 'request-epoch-change': if (roleOf(s) === 'voter' && s.phase !== 'closed') forceProposal(s); break
    case 'candidacy': setCandidacy(s, input.candidate); break
    case 'hold-evaluation': if (s.evaluation === 'idle') s.evaluation = 'held'; break
    case 'release-evaluation':
      if (s.evaluation === 'held') s.evaluation = 'idle'
      kickEvaluator(s)
      break
    case 'close': close(s); break
    case 'batches-persisted':
      noteDurable(s, input.frontier)
      onBatchesPersisted(s, input.batches)
      break
    case 'synced': onSynced(s, input.frontier); break
    case 'gc-done': onGcDone(s, input.horizon, input.result); break
    case 'snapshot-exported':
      onSnapshotExported(s, input.id, input.to, input.at)
      kickEvaluator(s)
      break
    case 'snapshot-read': onSnapshotRead(s, input.id, input.part); break
    case 'scrubbed': onScrubbed(s, input.state); break
    case 'snapshot-staged': onSnapshotStaged(s, input.id, input.digest); break
    case 'snapshot-imported':
      onSnapshotImported(s, input.cursor)
      kickEvaluator(s)
      break
    case 'lease-persisted': onLeasePersisted(s, input.lease); break
    case 'acceptor-persisted': onAcceptorPersisted(s, input.acceptor); break
    case 'decision-persisted': onDecisionPersisted(s, input.change, input.proof, input.config, input.relayedBy); break
    case 'batch-signed':
      onBatchSigned(s, input.epoch, input.seq, input.sig)
      startWrite(s)
      break
    case 'batches-verified': onBatchesVerified(s, input.from, input.batches, input.ok, input.unchecked === true); break
    case 'entries-signed': onEntriesSigned(s, input.message, input.sig); break
    case 'entries-verified': onEntriesVerified(s, input.from, input.message, input.ok, input.unchecked === true); break
    case 'decision-signed': onDecisionSigned(s, input.to, input.epoch, input.ballot, input.sig); break
    case 'decision-verified': onDecisionVerified(s, input.from, input.change, input.proof, input.ok); break
    case 'run-applied': onRunApplied(s, input.run, input.applied, input.plan); break
    case 'run-forwards': onRunForwards(s, input.run, input.plan, input.forwards); break
    case 'values-read': onValuesRead(s, input.read, input.result); break
    case 'forward-read': onForwardRead(s, input.to, input.fwd); break
    case 'values-refused': onValuesRefused(s, input.read, input.error); break
    case 'batches-read': onBatchesRead(s, input.replyTo, input.batches, input.damaged, input, input.h); break
    case 'decision-read': onDecisionRead(s, input.replyTo, input.change, input.proof); break
    case 'store-failed': fail(s, input.error); break
    case 'scrub-done': onScrubDone(s); break
    case 'state-damaged': onStateDamaged(s, input.error, input.read, input.run); break
  }
}

/** A timeout the tick runs: each checks its own clock in the state and acts when due. */
interface Timeout {
  readonly name: string
  /** Whose timeout it is: a voter's, a non-voter's, or every peer's. */
  readonly of: 'voter' | 'observer' | 'any'
  readonly run: (s: PeerState) => void
}

/** Every timeout, in the order each tick runs them. */
const TIMEOUTS: readonly Timeout[] = [
  { name: 'retransmit unacked writes', of: 'voter', run: retransmit },
  { name: 'renew the clock lease', of: 'voter', run: s => { if (!s.detector.quiet) renewLease(s) } },
  { name: 'gossip the watermark (the heartbeat when idle, nothing when quiet)', of: 'voter', run: heartbeat },
  { name: 'forget silent observers and candidates', of: 'voter', run: expireObservers },
  { name: 'failure detector', of: 'voter', run: s => { if (s.phase !== 'failed') detectFailures(s, s.now) } },
  { name: 'hello to the voters', of: 'observer', run: sendHello },
  { name: 'the dissemination tree: silent children and parents', of: 'any', run: tickTree },
  { name: 'ask contacts when every voter is silent', of: 'any', run: reachOut },
  { name: 'digest checkpoint (a new one)', of: 'any', run: s => { if (s.now - s.lastCheckpointSent >= C.DEFAULT_CHECKPOINT_INTERVAL_MS) sendCheckpoint(s) } },
  { name: 'gap fill', of: 'any', run: askForGaps },
  { name: 'ask again for forwarded reads and results', of: 'any', run: tickPartitions },
  { name: 'resend forwarded submissions', of: 'any', run: retryForwards },
  { name: 'read deadlines and timestamp requests', of: 'any', run: tickReads },
  { name: 'resend read confirmations', of: 'any', run: retryConfirm },
  { name: 'call deadlines', of: 'any', run: expireWaiters },
  { name: 'leave deadlines', of: 'any', run: expireLeaves },
  { name: 'revoke deadlines', of: 'any', run: expireRevokeWaiters },
  { name: 'make settled runs durable', of: 'any', run: syncSettled },
  { name: 'report the durable frontier', of: 'any', run: reportDurable },
  { name: 'collect garbage below the horizon', of: 'any', run: collectGarbage },
  { name: 'snapshot catch-up and exports', of: 'any', run: pursueSnapshot },
  { name: 'scrub the state for damage', of: 'any', run: tickScrub }
]

function tick (s: PeerState): void {
  if (s.phase === 'closed') return
  const role = roleOf(s) === 'voter' ? 'voter' : 'observer'
  for (const t of TIMEOUTS) if (t.of === 'any' || t.of === role) t.run(s)
}

function expireObservers (s: PeerState): void {
  for (const [id, seen] of s.observers) if (s.now - seen > C.DEFAULT_OBSERVER_TTL_MS) s.observers.delete(id)
  for (const [id, c] of s.candidates) if (s.now - c.seen > C.DEFAULT_OBSERVER_TTL_MS) s.candidates.delete(id)
}

function sendHello (s: PeerState): void {
  if (s.now - s.lastHello < C.DEFAULT_HELLO_INTERVAL_MS) return
  s.lastHello = s.now
  // A candidate asks to be voted in only once it keeps up (as a learner is promoted once in sync): voters far behind
  // the group, needing history that only others hold, could otherwise make up a whole epoch's voters. Measured
  // against the highest watermark it has seen in any epoch (a new epoch's starts at zero), and not before it has seen
  // one: a peer that knows nothing yet looks as if it kept up.
  const ready = s.knownWatermark !== TS_ZERO && s.evaluatingEpoch === s.current.epoch && s.history.fetch === undefined && s.history.heal === undefined &&
    timestampMs(s.knownWatermark) - timestampMs(s.frontier) <= SYNC_LIVE_LAG_MS
  const parts = declaredParts(s)
  // In the tree, the voters hear where it hangs (they send it nothing unless they are its parent), and so does its parent.
  const parent = s.tree.parent?.id
  const tree = inTree(s) ? treeHello(s, parent) : undefined
  const hello: Message = { t: 'hello', epoch: s.current.epoch, candidate: s.candidate && !s.leaving && ready, ...(parts === undefined ? {} : { parts }), ...(tree === undefined ? {} : { tree }) }
  for (const v of s.current.voters) send(s, v, hello)
  if (parent !== undefined && tree !== undefined && !s.current.voters.includes(parent)) send(s, parent, hello)
}

function expireLeaves (s: PeerState): void {
  for (const [call, deadline] of s.leaves) {
    if (s.now < deadline) continue
    s.leaves.delete(call)
    settle(s, call, undefined, new QuorumUnavailableError('timed out waiting for the watermark'))
  }
}

/**
 * Whether this peer asks to be a voter while it is not one. Asking again calls off a leave under way (its
 * callers get AbortError; a voter stays one) or one done (an observer that left asks to be voted back in:
 * a tab voter shown again after it handed over). Not asking does not leave: `leave` does.
 */
function setCandidacy (s: PeerState, candidate: boolean): void {
  // The voters hear of it at the next tick, not a hello interval later.
  if (candidate !== s.candidate) s.lastHello = -Infinity
  s.candidate = candidate
  if (!candidate || !s.leaving) return
  s.leaving = false
  for (const call of s.leaves.keys()) settle(s, call, undefined, new AbortError('the leave was called off: this peer asked to be a voter again'))
  s.leaves.clear()
}

/** A voter leaves gracefully: it proposes the next epoch without itself; the call settles once that is installed. */
function leave (s: PeerState, call: number, timeoutMs: number | undefined): void {
  if (roleOf(s) !== 'voter') {
    settle(s, call, undefined)
    return
  }
  if (s.current.voters.length === 1) {
    settle(s, call, undefined, new QuorumUnavailableError('the only voter cannot leave its group'))
    return
  }
  s.leaving = true
  s.current.nextProposeAt = -Infinity
  s.current.changeWantedSince = -Infinity
  // The others hear it now, with this voter's entry: the first of them proposes the epoch without it too.
  publish(s)
  s.leaves.set(call, s.now + (timeoutMs ?? s.options.callTimeoutMs))
}
