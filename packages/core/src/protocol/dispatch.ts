import * as C from '../constants.js'
import { errorFromInfo } from '../errors.js'
import type { Message } from '../messages.js'
import { validateMessage } from '../validate.js'
import { confirmedTimestamp, onConfirm, onConfirmed, retryConfirm } from './confirm.js'
import { handleSubmit, onAck, retransmit } from './coordinator.js'
import { compareCheckpoint, sendCheckpoint } from './divergence.js'
import { errorInfo, send, type PeerEnv } from './env.js'
import { mergeWatermark, publish, renewLease } from './promise.js'
import { serveRead } from './reads.js'
import { onAccept, onPrepare } from './reconfig/acceptor.js'
import { tellStale } from './reconfig/epoch-news.js'
import { onDecided } from './reconfig/install.js'
import { detectFailures, onAccepted, onNack, onPromise } from './reconfig/proposer.js'
import { acceptThunk, askForGaps, serveGap } from './replica.js'
import { expireWaiters, rejectWaiters, resolveWaiters, retryForwards } from './requests.js'
import { count, isVoterOfKnownEpoch, roleOf, type PeerState } from './state.js'

/**
 * Handles a message from a peer. Malformed or out-of-role input is dropped
 * and counted; nothing a peer sends can throw out of here.
 */
export function receive (s: PeerState, env: PeerEnv, from: string, raw: unknown): void {
  if (s.closed) return
  let m: Message
  try {
    m = validateMessage(raw, { maxValueBytes: env.options.maxValueBytes })
  } catch (err) {
    count(s, 'invalid')
    env.log('invalid-message', { from, error: (err as Error).message })
    return
  }
  try {
    dispatch(s, env, from, m)
  } catch (err) {
    count(s, 'handler-error')
    env.log('handler-error', { from, type: m.t, error: errorInfo(err).message })
  }
}

/** One handler per message type. */
export function dispatch (s: PeerState, env: PeerEnv, from: string, m: Message): void {
  if (s.current.voters.includes(from)) s.current.lastHeard.set(from, env.clock.now())
  switch (m.t) {
    case 'write':
      onWrite(s, env, from, m)
      break
    case 'gap-rep':
      for (const t of m.thunks) {
        // Gaps are asked of voters only, so only a voter's answer is taken.
        const record = s.epochs.get(t.epoch)
        if (record === undefined || (!record.voters.includes(from) && !s.current.voters.includes(from))) count(s, 'gap-from-non-voter')
        else acceptThunk(s, env, t, from)
      }
      break
    case 'ack':
      mergeWatermark(s, env, from, m.wm)
      onAck(s, env, from, m.epoch, m.seqs)
      break
    case 'wm':
      mergeWatermark(s, env, from, m.wm)
      break
    case 'gap-req':
      void serveGap(s, env, from, m.coordinator, m.epoch, m.from, m.to)
      break
    case 'submit':
      handleSubmit(s, env, m.req, { kind: 'remote', to: m.replyTo })
      break
    case 'submit-rep':
      if (m.result !== undefined) resolveWaiters(s, env, m.clientTxnId, m.result)
      else if (m.error !== undefined && m.error.name !== 'QuorumUnavailableError') rejectWaiters(s, env, m.clientTxnId, errorFromInfo(m.error))
      break
    case 'read':
      void serveRead(s, env, m.keys, m.consistency).then(
        result => { send(s, env, m.replyTo, { t: 'read-rep', reqId: m.reqId, result }) },
        err => { send(s, env, m.replyTo, { t: 'read-rep', reqId: m.reqId, error: errorInfo(err) }) })
      break
    case 'ts-req':
      if (roleOf(s) === 'voter') {
        confirmedTimestamp(s, env, {}).then(ts => { send(s, env, from, { t: 'ts-rep', reqId: m.reqId, ts }) }, () => {})
      }
      break
    case 'confirm':
      onConfirm(s, env, from, m.epoch, m.round)
      break
    case 'confirmed':
      onConfirmed(s, env, from, m.epoch, m.round)
      break
    case 'ts-rep': {
      const r = s.tsRequests.get(m.reqId)
      if (r !== undefined && s.current.voters.includes(from)) {
        s.tsRequests.delete(m.reqId)
        r.resolve(m.ts)
      }
      break
    }
    case 'ck':
      compareCheckpoint(s, env, from, m.count, m.digest)
      break
    case 'hello':
      onHello(s, env, from, m.epoch, m.candidate)
      break
    case 'rc-prepare':
      onPrepare(s, env, from, m.epoch, m.ballot)
      break
    case 'rc-accept':
      onAccept(s, env, from, m.epoch, m.ballot, m.value)
      break
    case 'rc-promise':
      onPromise(s, env, from, m.epoch, m.ballot, m.accepted, m.report)
      break
    case 'rc-accepted':
      onAccepted(s, env, from, m.epoch, m.ballot)
      break
    case 'rc-nack':
      onNack(s, env, m.epoch, m.ballot)
      break
    case 'rc-decided':
      onDecided(s, env, from, m.value)
      break
    case 'rc-fetch':
      if (m.epoch < s.current.epoch) tellStale(s, env, from, m.epoch, true)
      break
    case 'read-rep':
      break
  }
}

function onWrite (s: PeerState, env: PeerEnv, from: string, m: Extract<Message, { t: 'write' }>): void {
  // Only voters coordinate: thunks from anyone else are refused, not stored.
  if (!isVoterOfKnownEpoch(s, from) && !m.thunks.some(t => t.epoch > s.current.epoch)) {
    count(s, 'write-from-non-voter')
    // A voter voted out in an epoch it has not heard of: tell it.
    const stale = m.thunks.find(t => t.epoch < s.current.epoch)
    if (stale !== undefined) tellStale(s, env, from, stale.epoch)
    return
  }
  mergeWatermark(s, env, from, m.wm)
  for (const t of m.thunks) {
    const record = s.epochs.get(t.epoch)
    // A voter of the thunk's epoch coordinates it, and only its own.
    if (record !== undefined && !record.voters.includes(from)) count(s, 'write-from-non-voter')
    else if (t.coordinator !== from) count(s, 'write-not-own-refused')
    else if (t.epoch < s.evaluatingEpoch || (record !== undefined && record.floor !== undefined)) tellStale(s, env, from, t.epoch)
    else acceptThunk(s, env, t, from)
  }
}

/** An observer (or a candidate) announces itself to the voters. */
function onHello (s: PeerState, env: PeerEnv, from: string, epoch: number | undefined, candidate: boolean | undefined): void {
  if (epoch !== undefined && epoch < s.current.epoch) tellStale(s, env, from, epoch)
  if (roleOf(s) === 'voter' && !s.current.voters.includes(from)) {
    s.observers.set(from, env.clock.now())
    if (candidate === true && epoch !== undefined) s.candidates.set(from, { seen: env.clock.now(), epoch })
    else s.candidates.delete(from)
  }
}

/** Timers: retransmission, gossip, gap fill, lease renewal, failure detection, timeouts. The host calls it every few ms. */
export function tick (s: PeerState, env: PeerEnv): void {
  if (s.closed) return
  const now = env.clock.now()
  if (roleOf(s) === 'voter') {
    retransmit(s, env, now)
    renewLease(s, env)
    if (now - s.lastGossip >= env.options.gossipIntervalMs) publish(s, env)
    for (const [id, seen] of s.observers) if (now - seen > C.DEFAULT_OBSERVER_TTL_MS) s.observers.delete(id)
    for (const [id, c] of s.candidates) if (now - c.seen > C.DEFAULT_OBSERVER_TTL_MS) s.candidates.delete(id)
    if (s.failure === undefined) detectFailures(s, env, now)
  } else if (now - s.lastHello >= C.DEFAULT_HELLO_INTERVAL_MS) {
    s.lastHello = now
    const hello: Message = { t: 'hello', epoch: s.current.epoch, candidate: env.options.candidate && !s.leaving }
    for (const v of s.current.voters) send(s, env, v, hello)
  }
  if (now - s.lastCheckpointSent >= C.DEFAULT_CHECKPOINT_INTERVAL_MS) sendCheckpoint(s, env, now)
  askForGaps(s, env, now)
  retryForwards(s, env, now)
  retryConfirm(s, env, now)
  expireWaiters(s, now)
}
