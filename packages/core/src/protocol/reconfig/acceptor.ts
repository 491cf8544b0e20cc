import type { Message } from '../../messages.js'
import type { Ballot, EpochChange, EpochReport, Thunk } from '../../types.js'
import type { Value } from '../../value.js'
import { send, type PeerEnv } from '../env.js'
import { fail } from '../requests.js'
import { count, isSealed, roleOf, type AcceptorState, type PeerState } from '../state.js'
import { compareBallots } from './choose-value.js'
import { noticeEpoch, tellStale } from './epoch-news.js'

/**
 * The acceptor of an epoch change (single-decree Paxos among the epoch's
 * voters). Promising a ballot seals the voter: it takes no more writes of its
 * epoch, so the report it sends with its promise stays true.
 */

/** Sends a reconfiguration message; to itself it is delivered on the next microtask, like any other. */
export function sendRc (s: PeerState, env: PeerEnv, to: string, m: Message): void {
  if (to !== s.id) {
    send(s, env, to, m)
    return
  }
  env.deliverToSelf(m)
}

/** Whether an rc message for `epoch` from `from` is for this voter's current epoch and from one of its voters. */
export function rcApplies (s: PeerState, env: PeerEnv, from: string, epoch: number): boolean {
  if (epoch < s.current.epoch) {
    tellStale(s, env, from, epoch)
    return false
  }
  if (epoch > s.current.epoch) {
    noticeEpoch(s, env, from)
    return false
  }
  if (roleOf(s) !== 'voter' || !s.current.voters.includes(from)) {
    // Only the epoch's voters may propose or take part: anything else is refused.
    count(s, 'rc-refused')
    return false
  }
  return !s.installing
}

function seal (s: PeerState, env: PeerEnv): void {
  if (isSealed(s)) return
  s.current.sealedAt = env.clock.now()
  count(s, 'rc-sealed')
}

/** Durably records the acceptor state, then answers. */
function persistAcceptor (s: PeerState, env: PeerEnv, state: AcceptorState, then: () => void): void {
  const record = s.current
  record.acceptor = state
  s.acceptorWrites = s.acceptorWrites.then(
    async () => { await env.store.write({ meta: [['paxos', state as unknown as Value]], durability: 'strict' }) }
  ).then(() => { if (!s.closed && s.current.acceptor === state) then() }, err => { fail(s, env, err) })
}

/** Whether this acceptor may take `ballot` from `from` (its epoch's voter, not below its promise); answers a nack if not. */
function takesBallot (s: PeerState, env: PeerEnv, from: string, epoch: number, ballot: Ballot): boolean {
  if (!rcApplies(s, env, from, epoch)) return false
  s.highestBallot = Math.max(s.highestBallot, ballot.n)
  const promised = s.current.acceptor.promised
  if (promised !== undefined && compareBallots(ballot, promised) < 0) {
    sendRc(s, env, from, { t: 'rc-nack', epoch, ballot: promised })
    return false
  }
  return true
}

export function onPrepare (s: PeerState, env: PeerEnv, from: string, epoch: number, ballot: Ballot): void {
  if (!takesBallot(s, env, from, epoch, ballot)) return
  seal(s, env)
  const state: AcceptorState = { ...s.current.acceptor, promised: ballot }
  persistAcceptor(s, env, state, () => {
    const accepted = state.accepted
    sendRc(s, env, from, { t: 'rc-promise', epoch, ballot, ...(accepted === undefined ? {} : { accepted }), report: report(s, env) })
  })
}

/** What this sealed voter holds of its epoch: contiguous prefixes, everything unevaluated, and a timestamp above all its promises. */
function report (s: PeerState, env: PeerEnv): EpochReport {
  const have: Array<{ coordinator: string, seq: number }> = []
  const held: Thunk[] = []
  for (const [c, stream] of s.current.streams) {
    have.push({ coordinator: c, seq: stream.have })
    for (const t of stream.held.values()) held.push(t)
  }
  return { have, held, top: s.minter.mint(env.clock.now()) }
}

export function onAccept (s: PeerState, env: PeerEnv, from: string, epoch: number, ballot: Ballot, value: EpochChange): void {
  if (!takesBallot(s, env, from, epoch, ballot)) return
  if (value.epoch !== epoch + 1) {
    count(s, 'rc-refused')
    return
  }
  seal(s, env)
  const state: AcceptorState = { epoch, promised: ballot, accepted: { ballot, value } }
  persistAcceptor(s, env, state, () => { sendRc(s, env, from, { t: 'rc-accepted', epoch, ballot }) })
}
