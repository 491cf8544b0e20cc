import { AbortError, PeerClosedError, QuorumUnavailableError, StoreFailedError } from '../errors.js'
import { hash64 } from '../hash.js'
import type { SubmitRequest, TxnResult } from '../types.js'
import { errorInfo, log, send, settle } from './emit.js'
import { type Forward, type PeerState, type Waiter } from './state.js'

/**
 * Calls waiting on this peer: submissions (a local call, or a client or
 * observer that sent one), and the submissions an observer forwarded. Every
 * local call has a deadline in the state, checked by the tick: the one
 * deadline mechanism (reads and leaves use it too).
 */

export function addWaiter (s: PeerState, clientTxnId: string, w: Waiter): void {
  if (w.kind === 'local' && w.deadline < s.nextDeadline) s.nextDeadline = w.deadline
  const list = s.waiters.get(clientTxnId)
  if (list === undefined) s.waiters.set(clientTxnId, [w])
  else list.push(w)
}

export function settleWaiter (s: PeerState, w: Waiter, clientTxnId: string, result: TxnResult | undefined, err: Error | undefined): void {
  if (w.kind === 'local') settle(s, w.call, result, err)
  else if (result !== undefined) send(s, w.to, { t: 'submit-rep', clientTxnId, result })
  else send(s, w.to, { t: 'submit-rep', clientTxnId, error: errorInfo(err) })
}

export function resolveWaiters (s: PeerState, clientTxnId: string, result: TxnResult): void {
  finishWaiters(s, clientTxnId, result, undefined)
}

export function rejectWaiters (s: PeerState, clientTxnId: string, err: Error): void {
  finishWaiters(s, clientTxnId, undefined, err)
}

function finishWaiters (s: PeerState, clientTxnId: string, result: TxnResult | undefined, err: Error | undefined): void {
  s.forwards.delete(clientTxnId)
  const list = s.waiters.get(clientTxnId)
  if (list === undefined) return
  s.waiters.delete(clientTxnId)
  for (const w of list) settleWaiter(s, w, clientTxnId, result, err)
}

/** Fails the local calls whose deadline passed: their outcome is unknown. */
export function expireWaiters (s: PeerState): void {
  const now = s.now
  if (now < s.nextDeadline) return
  s.nextDeadline = Infinity
  for (const [id, list] of s.waiters) {
    for (const w of list) if (w.kind === 'local' && w.deadline > now && w.deadline < s.nextDeadline) s.nextDeadline = w.deadline
    const keep = list.filter(w => {
      if (w.kind !== 'local' || now < w.deadline) return true
      settle(s, w.call, undefined, new QuorumUnavailableError(`no result for ${id} in time; the outcome is unknown, retry with the same clientTxnId`))
      return false
    })
    if (keep.length === 0) { s.waiters.delete(id); s.forwards.delete(id) } else if (keep.length !== list.length) s.waiters.set(id, keep)
  }
}

/** A local submission's caller gave up (its signal aborted): it stops waiting; the transaction may still run. */
export function abortWaiter (s: PeerState, call: number): boolean {
  for (const [id, list] of s.waiters) {
    const at = list.findIndex(w => w.kind === 'local' && w.call === call)
    if (at < 0) continue
    const keep = list.filter((_, i) => i !== at)
    if (keep.length === 0) s.waiters.delete(id)
    else s.waiters.set(id, keep)
    settle(s, call, undefined, new AbortError('aborted'))
    return true
  }
  return false
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
export function forward (s: PeerState, req: SubmitRequest): void {
  if (s.forwards.has(req.clientTxnId)) return
  const f: Forward = { req, sentAt: s.now, to: '' }
  s.forwards.set(req.clientTxnId, f)
  sendForward(s, f)
}

function sendForward (s: PeerState, f: Forward): void {
  f.to = homeVoter(s, f.to)
  f.sentAt = s.now
  send(s, f.to, { t: 'submit', req: f.req, replyTo: s.id })
}

export function retryForwards (s: PeerState): void {
  const every = s.options.writeRetryMs * 5
  for (const f of s.forwards.values()) if (s.now - f.sentAt >= every) sendForward(s, f)
}

/**
 * A store operation failed: the peer stops serving and every pending call
 * (submissions, reads, leaves) fails with the store's error.
 */
export function fail (s: PeerState, error: { readonly name: string, readonly message: string }): void {
  if (s.phase === 'failed' || s.phase === 'closed') return
  s.phase = 'failed'
  s.failure = error.message
  log(s, 'store-failed', { error: s.failure })
  const e = new StoreFailedError(`peer ${s.id} stopped: ${s.failure}`)
  rejectAllLocal(s, e)
}

/** Closes the peer: every pending local call fails with PeerClosedError. */
export function close (s: PeerState): void {
  if (s.phase === 'closed') return
  // Closed first: remote waiters get no answer from a closed peer.
  s.phase = 'closed'
  rejectAllLocal(s, new PeerClosedError('peer closed'))
  // Its children in the dissemination tree find another place now, not after a silence (tree.ts).
  for (const c of s.tree.children.keys()) send(s, c, { t: 'place' })
  s.tree.children.clear()
}

function rejectAllLocal (s: PeerState, e: Error): void {
  for (const id of s.waiters.keys()) rejectWaiters(s, id, e)
  for (const read of s.reads.values()) if (read.reply.kind === 'local') settle(s, read.reply.call, undefined, e)
  s.reads.clear()
  s.readIds.clear()
  s.confirmQueue = []
  s.confirming = undefined
  for (const call of s.leaves.keys()) settle(s, call, undefined, e)
  s.leaves.clear()
}
