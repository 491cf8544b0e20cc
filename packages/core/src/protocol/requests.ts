import { AbortError, PeerClosedError, QuorumUnavailableError, StoreFailedError } from '../errors.js'
import { hash64 } from '../hash.js'
import type { Timestamp } from '../timestamp.js'
import type { SubmitRequest, TxnResult } from '../types.js'
import { errorInfo, send, type PeerEnv } from './env.js'
import type { Forward, PeerState, TsRequest, Waiter } from './state.js'

/**
 * Requests waiting on this peer: calls (local or for a remote client),
 * submissions an observer forwarded, timestamp requests, and the guards that
 * give every pending operation its abort signal and deadline.
 */

export interface CallOptions {
  readonly signal?: AbortSignal
  /** @default the peer's callTimeoutMs */
  readonly timeoutMs?: number
}

export function addWaiter (s: PeerState, clientTxnId: string, w: Waiter): void {
  if (w.kind === 'local' && w.deadline < s.nextDeadline) s.nextDeadline = w.deadline
  const list = s.waiters.get(clientTxnId)
  if (list === undefined) s.waiters.set(clientTxnId, [w])
  else list.push(w)
}

export function settleWaiter (s: PeerState, env: PeerEnv, w: Waiter, clientTxnId: string, result: TxnResult | undefined, err: Error | undefined): void {
  if (w.kind === 'local') {
    if (result !== undefined) w.resolve(result)
    else w.reject(err as Error)
  } else if (result !== undefined) {
    send(s, env, w.to, { t: 'submit-rep', clientTxnId, result })
  } else {
    send(s, env, w.to, { t: 'submit-rep', clientTxnId, error: errorInfo(err) })
  }
}

export function resolveWaiters (s: PeerState, env: PeerEnv, clientTxnId: string, result: TxnResult): void {
  finishWaiters(s, env, clientTxnId, result, undefined)
}

export function rejectWaiters (s: PeerState, env: PeerEnv, clientTxnId: string, err: Error): void {
  finishWaiters(s, env, clientTxnId, undefined, err)
}

function finishWaiters (s: PeerState, env: PeerEnv, clientTxnId: string, result: TxnResult | undefined, err: Error | undefined): void {
  s.forwards.delete(clientTxnId)
  const list = s.waiters.get(clientTxnId)
  if (list === undefined) return
  s.waiters.delete(clientTxnId)
  for (const w of list) settleWaiter(s, env, w, clientTxnId, result, err)
}

/** Runs every guard and fails the local calls whose deadline passed. */
export function expireWaiters (s: PeerState, now: number): void {
  for (const check of s.guards) if (check()) s.guards.delete(check)
  if (now < s.nextDeadline) return
  s.nextDeadline = Infinity
  for (const [id, list] of s.waiters) {
    for (const w of list) if (w.kind === 'local' && w.deadline > now && w.deadline < s.nextDeadline) s.nextDeadline = w.deadline
    const keep = list.filter(w => {
      if (w.kind !== 'local' || now < w.deadline) return true
      w.reject(new QuorumUnavailableError(`no result for ${id} in time; the outcome is unknown, retry with the same clientTxnId`))
      return false
    })
    if (keep.length === 0) { s.waiters.delete(id); s.forwards.delete(id) } else if (keep.length !== list.length) s.waiters.set(id, keep)
  }
}

/**
 * Rejects through `reject` on abort or timeout. The timeout runs on the
 * injected clock, checked by tick(), so simulated time governs it. The
 * caller releases the guard once it settled otherwise: every tick checks
 * every guard, so guards left until their deadline made each tick's cost
 * grow with the strict-read rate.
 */
export function guard (s: PeerState, env: PeerEnv, options: CallOptions, reject: (e: Error) => void, cleanup: () => void): () => void {
  const deadline = env.clock.now() + (options.timeoutMs ?? env.options.callTimeoutMs)
  const onAbort = (): void => { if (check()) release() }
  const release = (): void => {
    s.guards.delete(check)
    options.signal?.removeEventListener('abort', onAbort)
  }
  const check = (): boolean => {
    if (options.signal?.aborted === true) { cleanup(); reject(new AbortError('aborted')); return true }
    if (env.clock.now() >= deadline) { cleanup(); reject(new QuorumUnavailableError('timed out waiting for the watermark')); return true }
    if (s.closed) { cleanup(); reject(new PeerClosedError('peer closed')); return true }
    return false
  }
  options.signal?.addEventListener('abort', onAbort, { once: true })
  s.guards.add(check)
  return release
}

/**
 * The voter an observer sends its submissions and timestamp requests to: the
 * same one until a request sent there (`failed`) goes unanswered, then the
 * next. Keeping to one voter lets the transport bundle concurrent requests
 * and their answers into one frame each way; the first home is picked by
 * this peer's id, so observers spread over the voters.
 */
export function homeVoter (s: PeerState, failed: string): string {
  const voters = s.current.voters
  let at = s.home === undefined ? -1 : voters.indexOf(s.home)
  if (at < 0) at = Number.parseInt(hash64(s.id).slice(0, 8), 16) % voters.length
  else if (failed === s.home) at = (at + 1) % voters.length
  s.home = voters[at] as string
  return s.home
}

/** An observer sends a submission to its home voter (once per clientTxnId; retried by the tick). */
export function forward (s: PeerState, env: PeerEnv, req: SubmitRequest): void {
  if (s.forwards.has(req.clientTxnId)) return
  const f: Forward = { req, sentAt: env.clock.now(), to: '' }
  s.forwards.set(req.clientTxnId, f)
  sendForward(s, env, f)
}

function sendForward (s: PeerState, env: PeerEnv, f: Forward): void {
  f.to = homeVoter(s, f.to)
  f.sentAt = env.clock.now()
  send(s, env, f.to, { t: 'submit', req: f.req, replyTo: s.id })
}

/** Asks a voter for a strict-read timestamp (an observer cannot mint one). */
export function requestTimestamp (s: PeerState, env: PeerEnv, options: CallOptions): Promise<Timestamp> {
  return new Promise<Timestamp>((resolve, reject) => {
    const reqId = `${s.id}:ts:${++s.requestCounter}`
    let release = (): void => {}
    const r: TsRequest = { resolve: ts => { release(); resolve(ts) }, sentAt: env.clock.now(), to: '' }
    s.tsRequests.set(reqId, r)
    release = guard(s, env, options, reject, () => { s.tsRequests.delete(reqId) })
    sendTsRequest(s, env, reqId, r)
  })
}

function sendTsRequest (s: PeerState, env: PeerEnv, reqId: string, r: TsRequest): void {
  r.to = homeVoter(s, r.to)
  r.sentAt = env.clock.now()
  send(s, env, r.to, { t: 'ts-req', reqId })
}

export function retryForwards (s: PeerState, env: PeerEnv, now: number): void {
  const every = env.options.writeRetryMs * 5
  for (const f of s.forwards.values()) if (now - f.sentAt >= every) sendForward(s, env, f)
  for (const [reqId, r] of s.tsRequests) if (now - r.sentAt >= every) sendTsRequest(s, env, reqId, r)
}

/** A store operation failed: the peer stops serving and every pending call fails with the store's error. */
export function fail (s: PeerState, env: PeerEnv, err: unknown): void {
  if (s.failure !== undefined) return
  s.failure = errorInfo(err).message
  env.log('failed', { error: s.failure })
  const e = new StoreFailedError(`peer ${s.id} stopped: ${s.failure}`)
  for (const id of s.waiters.keys()) rejectWaiters(s, env, id, e)
}
