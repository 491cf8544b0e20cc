import type { Timestamp } from '../timestamp.js'
import { send, type PeerEnv } from './env.js'
import { guard, requestTimestamp, type CallOptions } from './requests.js'
import { isSealed, roleOf, type ConfirmRound, type PeerState } from './state.js'

/**
 * A strict read's timestamp from this voter. A voter voted out of a later
 * epoch it has not heard of yet would mint one below transactions that
 * already completed there, so the timestamp counts only once a majority of
 * this epoch's voters said, after it was minted, that the epoch is still
 * current and unsealed (a ReadIndex-style check; one round serves every
 * read that waits for it). If the epoch changes meanwhile, it mints again.
 */
export async function confirmedTimestamp (s: PeerState, env: PeerEnv, options: CallOptions): Promise<Timestamp> {
  for (;;) {
    if (roleOf(s) !== 'voter') return await requestTimestamp(s, env, options)
    const ts = s.minter.mint(env.clock.now())
    const ok = await new Promise<boolean>((resolve, reject) => {
      let release = (): void => {}
      const waiter = (v: boolean): void => { release(); resolve(v) }
      s.confirmQueue.push(waiter)
      release = guard(s, env, options, reject, () => { s.confirmQueue = s.confirmQueue.filter(w => w !== waiter) })
      startConfirm(s, env)
    })
    if (ok) return ts
  }
}

function startConfirm (s: PeerState, env: PeerEnv): void {
  if (s.confirming !== undefined || s.confirmQueue.length === 0) return
  const waiters = s.confirmQueue
  s.confirmQueue = []
  const round: ConfirmRound = { round: ++s.confirmRound, epoch: s.current.epoch, oks: new Set<string>(), waiters, sentAt: env.clock.now() }
  s.confirming = round
  if (!isSealed(s) && !s.installing) round.oks.add(s.id)
  sendConfirm(s, env, round)
  checkConfirm(s, env)
}

export function sendConfirm (s: PeerState, env: PeerEnv, round: ConfirmRound): void {
  round.sentAt = env.clock.now()
  for (const v of s.current.voters) if (!round.oks.has(v)) send(s, env, v, { t: 'confirm', epoch: round.epoch, round: round.round })
}

/** A voter answers a confirmation only while the epoch is current here and no ballot sealed it. */
export function onConfirm (s: PeerState, env: PeerEnv, from: string, epoch: number, round: number): void {
  if (roleOf(s) === 'voter' && epoch === s.current.epoch && !isSealed(s) && !s.installing && s.current.voters.includes(from)) {
    send(s, env, from, { t: 'confirmed', epoch, round })
  }
}

export function onConfirmed (s: PeerState, env: PeerEnv, from: string, epoch: number, round: number): void {
  const c = s.confirming
  if (c === undefined || c.round !== round || c.epoch !== epoch || epoch !== s.current.epoch || !s.current.voters.includes(from)) return
  c.oks.add(from)
  checkConfirm(s, env)
}

function checkConfirm (s: PeerState, env: PeerEnv): void {
  const c = s.confirming
  if (c === undefined || c.oks.size < s.current.majority) return
  s.confirming = undefined
  for (const w of c.waiters) w(true)
  startConfirm(s, env)
}

/** An epoch change fails every confirmation under way: those reads mint again in the new epoch. */
export function failConfirmations (s: PeerState): void {
  const waiters = [...(s.confirming?.waiters ?? []), ...s.confirmQueue]
  s.confirming = undefined
  s.confirmQueue = []
  for (const w of waiters) w(false)
}

/** Resends an unanswered confirmation round (from the tick). */
export function retryConfirm (s: PeerState, env: PeerEnv, now: number): void {
  if (s.confirming !== undefined && now - s.confirming.sentAt >= env.options.writeRetryMs) sendConfirm(s, env, s.confirming)
}
