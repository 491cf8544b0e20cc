import type { Message } from '../../messages.js'
import type { Ballot, Batch, EpochChange, EpochReport, Revoked } from '../../types.js'
import { deferOpen } from '../batcher.js'
import { metaEntry, type AcceptorState } from '../meta.js'
import { count, emit, send } from '../emit.js'
import { isInstalling, isSealed, roleOf, type AcceptorWrite, type PeerState } from '../state.js'
import { compareBallots } from './choose-value.js'
import { lacksDamaged } from '../damage.js'
import { noticeEpoch, tellStale } from './epoch-news.js'
import { decisionStatement } from './proof.js'
import { partialEpoch } from '../partial.js'

/**
 * The acceptor of an epoch change (single-decree Paxos among the epoch's
 * voters). Promising a ballot seals the voter: it takes no more writes of its
 * epoch, so the report it sends with its promise stays true. Its state is
 * durable before it answers: one write at a time, the newest waiting.
 */

/** Sends a reconfiguration message; to itself it is delivered after this turn, like any other. */
export function sendRc (s: PeerState, to: string, m: Message): void {
  if (to !== s.id) {
    send(s, to, m)
    return
  }
  emit(s, { t: 'later', input: { t: 'self', message: m } })
}

/** Whether an rc message for `epoch` from `from` is for this voter's current epoch and from one of its voters. */
function rcApplies (s: PeerState, from: string, epoch: number): boolean {
  if (epoch < s.current.epoch) {
    tellStale(s, from, epoch)
    return false
  }
  if (epoch > s.current.epoch) {
    noticeEpoch(s, from)
    return false
  }
  if (roleOf(s) !== 'voter' || !s.current.voters.includes(from)) {
    // Only the epoch's voters may propose or take part: anything else is refused.
    count(s, 'rc-refused')
    return false
  }
  return !isInstalling(s)
}

function seal (s: PeerState): void {
  if (isSealed(s)) return
  // Thunks minted but not yet sealed into a batch must not reach this epoch now: they wait for the next one.
  deferOpen(s)
  s.current.sealedAt = s.now
  count(s, 'rc-sealed')
}

/** Records the acceptor state (it counts from now on) and persists it; the answer leaves once it is durable. */
function persistAcceptor (s: PeerState, write: AcceptorWrite): void {
  s.current.acceptor = write.acceptor
  const writes = s.acceptorWrites
  if (writes.writing) {
    writes.pending = write
    return
  }
  writes.writing = true
  writes.pending = write
  startAcceptorWrite(s)
}

function startAcceptorWrite (s: PeerState): void {
  const write = s.acceptorWrites.pending
  if (write === undefined) {
    s.acceptorWrites.writing = false
    return
  }
  emit(s, { t: 'persist', batch: { meta: [metaEntry('paxos', write.acceptor)], durability: 'strict' }, done: { t: 'acceptor-persisted', acceptor: write.acceptor } })
}

/** An acceptor state is durable: answer if it is still the current one, then write the newest waiting one. */
export function onAcceptorPersisted (s: PeerState, acceptor: AcceptorState): void {
  const writes = s.acceptorWrites
  const write = writes.pending
  if (write?.acceptor === acceptor) writes.pending = undefined
  if (s.phase !== 'closed' && s.current.acceptor === acceptor && write?.acceptor === acceptor) {
    const a = write.answer
    if (a.t === 'rc-promise') {
      sendRc(s, a.to, { t: 'rc-promise', epoch: a.epoch, ballot: a.ballot, ...(acceptor.accepted === undefined ? {} : { accepted: acceptor.accepted }), report: report(s) })
    } else if (s.options.signs && acceptor.accepted !== undefined) {
      // The answer carries this voter's signature of what it accepted (proof.ts); it leaves once signed.
      const statement = decisionStatement(s.config.groupId, a.epoch, a.ballot, acceptor.accepted.value)
      emit(s, { t: 'sign-decision', statement, to: a.to, epoch: a.epoch, ballot: a.ballot })
    } else {
      sendRc(s, a.to, { t: 'rc-accepted', epoch: a.epoch, ballot: a.ballot })
    }
  }
  startAcceptorWrite(s)
}

/** The signed answer to an accept: sent if this voter still holds that acceptance (unsigned if the signer failed). */
export function onDecisionSigned (s: PeerState, to: string, epoch: number, ballot: Ballot, sig: string | undefined): void {
  const accepted = s.current.acceptor.accepted
  if (s.phase === 'closed' || s.current.epoch !== epoch || accepted === undefined || compareBallots(accepted.ballot, ballot) !== 0) return
  if (sig === undefined) count(s, 'rc-sign-failed')
  sendRc(s, to, { t: 'rc-accepted', epoch, ballot, ...(sig === undefined ? {} : { sig }) })
}

/** Whether this acceptor may take `ballot` from `from` (its epoch's voter, not below its promise); answers a nack if not. */
function takesBallot (s: PeerState, from: string, epoch: number, ballot: Ballot): boolean {
  if (!rcApplies(s, from, epoch)) return false
  s.highestBallot = Math.max(s.highestBallot, ballot.n)
  const promised = s.current.acceptor.promised
  if (promised !== undefined && compareBallots(ballot, promised) < 0) {
    sendRc(s, from, { t: 'rc-nack', epoch, ballot: promised })
    return false
  }
  return true
}

export function onPrepare (s: PeerState, from: string, epoch: number, ballot: Ballot): void {
  if (!takesBallot(s, from, epoch, ballot)) return
  // It acked a batch its store since damaged: a report without it could help abort it (damage.ts).
  if (lacksDamaged(s)) { count(s, 'prepare-damaged'); return }
  seal(s)
  persistAcceptor(s, { acceptor: { ...s.current.acceptor, promised: ballot }, answer: { t: 'rc-promise', to: from, epoch, ballot } })
}

/** What this sealed voter holds of its epoch: contiguous prefixes, everything unevaluated, and a timestamp above all its promises. */
function report (s: PeerState): EpochReport {
  const have: Array<{ coordinator: string, seq: number }> = []
  const held: Batch[] = []
  for (const [c, stream] of s.current.streams) {
    have.push({ coordinator: c, seq: stream.have })
    for (const b of stream.held.values()) held.push(b)
  }
  const top = s.minter.mint(s.now)
  if (!partialEpoch(s, s.current)) return { have, held, top }
  // Partial replication: what this voter knows is durable (choose-value.ts keepsPartial); evaluation passes nothing that is not.
  const durable = [...s.current.streams].map(([c, stream]) => ({ coordinator: c, seq: Math.max(s.current.wm.get(c)?.count ?? 0, stream.evalNext - 1) }))
  return { have, held, top, durable }
}

export function onAccept (s: PeerState, from: string, epoch: number, ballot: Ballot, value: EpochChange): void {
  if (!takesBallot(s, from, epoch, ballot)) return
  if (value.epoch !== epoch + 1 || !extendsRevocations(s.config.revoked ?? [], value)) {
    count(s, 'rc-refused')
    return
  }
  seal(s)
  persistAcceptor(s, { acceptor: { epoch, promised: ballot, accepted: { ballot, value } }, answer: { t: 'rc-accepted', to: from, epoch, ballot } })
}

/**
 * A proposal keeps every revocation in force as it is and adds new ones from
 * its floor only (a proposer that dropped or backdated one would make
 * replicas that evaluate the old epoch after installing disagree with those
 * that evaluated it before).
 */
function extendsRevocations (current: readonly Revoked[], value: EpochChange): boolean {
  const next = value.revoked ?? []
  if (next.length < current.length) return false
  for (let i = 0; i < next.length; i++) {
    const r = next[i] as Revoked
    const had = current[i]
    if (had !== undefined ? (had.kind !== r.kind || had.id !== r.id || had.from !== r.from) : r.from !== value.floor) return false
  }
  return new Set(next.map(r => `${r.kind}:${r.id}`)).size === next.length
}
