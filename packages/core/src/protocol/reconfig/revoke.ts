import { PermissionDeniedError, QuorumUnavailableError, errorFromInfo } from '../../errors.js'
import { homeVoter } from '../requests.js'
import type { Revocation } from '../../types.js'
import { count, log, send, settle } from '../emit.js'
import { roleOf, type PeerState, type PendingRevocations, type RevokeWaiter } from '../state.js'
import { forceProposal } from './failure-detector.js'
import { MAX_REVOKED } from '../../validate.js'
import { keyOf, leftOut } from './revoked.js'

/**
 * Revocation (docs/design/permissions.md). An admin asks a voter to revoke a
 * member or an invite; the voter carries it into the next epoch change it
 * proposes, so the group's configuration holds it from that change's floor
 * on and every replica agrees which calls it refuses. The request waits
 * until an installed configuration holds it (a proposal that had to keep an
 * earlier accepted value goes round again), or until its deadline, when its
 * targets are dropped unless another request waits for them.
 */

/** An admin's (or this peer's own, `local`) request to revoke `targets`, all in one epoch change. */
export function onRevokeRequest (s: PeerState, waiter: RevokeWaiter, given: readonly Revocation[]): void {
  // Only what names a target goes into decisions (a request's other fields would ride in every one after).
  const targets = given.map(t => ({ kind: t.kind, id: t.id }))
  if (waiter.kind === 'remote' && !s.options.mayRevoke(waiter.to)) {
    count(s, 'revoke-refused')
    answer(s, waiter, undefined, new PermissionDeniedError(`${waiter.to} may not revoke in this group (only an admin may)`))
    return
  }
  if (targets.some(t => t.kind === 'peer' && t.id === s.config.genesis?.creator)) {
    answer(s, waiter, undefined, new PermissionDeniedError('the group\'s creator cannot be revoked: it signs the genesis every member checks'))
    return
  }
  const installed = new Set((s.config.revoked ?? []).map(keyOf))
  const keys = targets.map(keyOf).filter(k => !installed.has(k))
  if (keys.length === 0) {
    answer(s, waiter, s.current.epoch)
    return
  }
  if (waiter.kind === 'local' && roleOf(s) !== 'voter' && s.phase === 'running') {
    // A member that is no voter (an admin's tab) asks its home voter, and moves on to the next one if that one cannot.
    const reqId = `${s.id}:rv:${s.startedAt}:${waiter.call}`
    const f = { call: waiter.call, deadline: waiter.deadline, targets, to: homeVoter(s, '') }
    s.revocations.forwarded.set(reqId, f)
    send(s, f.to, { t: 'revoke', reqId, targets })
    return
  }
  if (roleOf(s) !== 'voter' || s.phase !== 'running') {
    answer(s, waiter, undefined, new QuorumUnavailableError(`${s.id} is not a voter of epoch ${s.current.epoch}: ask a voter`))
    return
  }
  // Requests no epoch change could install are refused rather than proposed for ever.
  const wanted = new Set([...s.revocations.targets.keys(), ...keys])
  if (s.current.voters.every(v => leftOut(s, v) || wanted.has(keyOf({ kind: 'peer', id: v })))) {
    answer(s, waiter, undefined, new PermissionDeniedError('that would revoke every voter of the group: revoke them after others are voted in'))
    return
  }
  if ((s.config.revoked?.length ?? 0) + wanted.size > MAX_REVOKED) {
    answer(s, waiter, undefined, new PermissionDeniedError(`the group's configuration holds at most ${MAX_REVOKED} revocations`))
    return
  }
  for (const t of targets) if (keys.includes(keyOf(t))) s.revocations.targets.set(keyOf(t), t)
  s.revocations.waiters.push({ waiter, keys, deadline: waiter.kind === 'local' ? waiter.deadline : s.now + s.options.callTimeoutMs })
  count(s, 'revoke-requested')
  log(s, 'revoke-requested', { targets: keys, by: waiter.kind === 'remote' ? waiter.to : s.id })
  forceProposal(s)
}

/** After an epoch is installed: requests its configuration holds are answered; the rest go into the next change. */
export function settleRevocations (s: PeerState): void {
  const p = s.revocations
  if (p.targets.size === 0) return
  const installed = new Set((s.config.revoked ?? []).map(keyOf))
  const voter = roleOf(s) === 'voter'
  for (const key of p.targets.keys()) {
    if (installed.has(key)) { p.targets.delete(key); count(s, 'revoked') } else if (!voter) p.targets.delete(key)
  }
  for (let i = p.waiters.length - 1; i >= 0; i--) {
    const w = p.waiters[i] as PendingRevocations['waiters'][number]
    if (w.keys.every(k => installed.has(k))) answer(s, w.waiter, s.current.epoch)
    else if (!voter) answer(s, w.waiter, undefined, new QuorumUnavailableError(`${s.id} was voted out before the revocation was installed: ask a voter`))
    else continue
    p.waiters.splice(i, 1)
  }
  if (p.targets.size > 0) forceProposal(s)
}

/** A voter's answer to a request this peer sent on: settled, or sent on to the next voter when that one could not take it. */
export function onRevokeAnswer (s: PeerState, from: string, reqId: string, epoch: number | undefined, error: { readonly name: string, readonly message: string } | undefined): void {
  const f = s.revocations.forwarded.get(reqId)
  if (f === undefined || from !== f.to) return
  if (epoch === undefined && error?.name === 'QuorumUnavailableError') {
    f.to = homeVoter(s, f.to)
    send(s, f.to, { t: 'revoke', reqId, targets: f.targets })
    return
  }
  s.revocations.forwarded.delete(reqId)
  settle(s, f.call, epoch, epoch === undefined ? errorFromInfo(error ?? { name: 'QuorumUnavailableError', message: 'no answer' }) : undefined)
}

/**
 * Requests past their deadline are answered (local ones) or dropped (remote
 * ones: the admin's own timeout answers it), and targets no request waits
 * for any more are no longer carried into epoch changes.
 */
export function expireRevokeWaiters (s: PeerState): void {
  for (const [reqId, f] of s.revocations.forwarded) {
    if (s.now < f.deadline) continue
    s.revocations.forwarded.delete(reqId)
    settle(s, f.call, undefined, new QuorumUnavailableError(`no voter answered the revocation within the call's timeout (last asked: ${f.to})`))
  }
  const waiters = s.revocations.waiters
  let expired = false
  for (let i = waiters.length - 1; i >= 0; i--) {
    const w = waiters[i] as PendingRevocations['waiters'][number]
    if (s.now < w.deadline) continue
    waiters.splice(i, 1)
    expired = true
    if (w.waiter.kind === 'local') settle(s, w.waiter.call, undefined, new QuorumUnavailableError('timed out waiting for an epoch change that holds the revocation'))
  }
  if (!expired) return
  const needed = new Set(waiters.flatMap(w => w.keys))
  for (const key of s.revocations.targets.keys()) if (!needed.has(key)) s.revocations.targets.delete(key)
}

function answer (s: PeerState, w: RevokeWaiter, epoch: number | undefined, error?: Error): void {
  if (w.kind === 'local') {
    settle(s, w.call, epoch, error)
    return
  }
  send(s, w.to, error === undefined ? { t: 'revoke-rep', reqId: w.reqId, ...(epoch === undefined ? {} : { epoch }) } : { t: 'revoke-rep', reqId: w.reqId, error: { name: error.name, message: error.message } })
}
