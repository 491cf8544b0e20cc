import type { Ballot, EpochChange, EpochReport } from '../../types.js'
import { count, log, send } from '../emit.js'
import { isInstalling, isSealed, type PeerState } from '../state.js'
import { sendRc } from './acceptor.js'
import { chooseValue, compareBallots } from './choose-value.js'
import { backoff, wantedVoters } from './failure-detector.js'
import { install } from './install.js'
import { nextRevoked } from './revoked.js'
import type { DecisionProof } from './proof.js'
import { coversSets, partialEpoch } from '../partial.js'

/** The proposer of an epoch change, and the trigger that starts one. */

const sameBallot = (a: Ballot, b: Ballot): boolean => a.n === b.n && a.by === b.by

/**
 * The failure detector and the trigger: a voter that suspects another one
 * (silent, or its watermark entry stuck, for suspectMs), is leaving, sees
 * an admissible candidate, or has been sealed without a decision for too
 * long, proposes the next epoch. Live voters take turns by rank so that
 * one proposal usually runs alone.
 */
export function detectFailures (s: PeerState, now: number): void {
  if (isInstalling(s)) return
  const record = s.current
  const proposeTimeoutMs = s.options.proposeTimeoutMs
  if (record.proposal !== undefined) {
    if (now - record.proposal.startedAt <= proposeTimeoutMs) return
    count(s, 'rc-proposal-timeout')
    record.proposal = undefined
    record.nextProposeAt = now + backoff(s, now)
  }
  if (now < record.nextProposeAt) return
  const want = wantedVoters(s, now)
  const changed = want.length !== record.voters.length || want.some(v => !record.voters.includes(v))
  const stuck = isSealed(s) && now - record.sealedAt > proposeTimeoutMs * 2
  if (!(changed && want.length > 0) && !stuck && !s.forcePropose && s.revocations.targets.size === 0) {
    record.changeWantedSince = undefined
    return
  }
  record.changeWantedSince ??= now
  if (now - record.changeWantedSince < backoff(s, now) - proposeTimeoutMs) return
  s.forcePropose = false
  startProposal(s, now)
}

function startProposal (s: PeerState, now: number): void {
  const record = s.current
  const ballot: Ballot = { n: ++s.highestBallot, by: s.id }
  record.proposal = { epoch: record.epoch, ballot, startedAt: now, promises: new Map(), accepts: new Map() }
  count(s, 'rc-proposed')
  log(s, 'rc-propose', { epoch: record.epoch, ballot })
  for (const v of record.voters) sendRc(s, v, { t: 'rc-prepare', epoch: record.epoch, ballot })
}

export function onPromise (s: PeerState, from: string, epoch: number, ballot: Ballot, accepted: { ballot: Ballot, value: EpochChange } | undefined, report: EpochReport): void {
  const record = s.current
  const p = record.proposal
  if (p === undefined || p.epoch !== epoch || !sameBallot(p.ballot, ballot) || p.value !== undefined || !record.voters.includes(from)) return
  p.promises.set(from, { accepted, report })
  // Partial replication: a majority of every set's storers too, so every part of every durable batch is reported (partial.ts).
  if (p.promises.size < record.majority || !coversSets(s, record, p.promises)) return
  // A voter that promised is alive: it is never voted out here (only suspects that stayed silent are).
  const voters = wantedVoters(s, s.now, new Set(p.promises.keys()))
  if (voters.length === 0) {
    record.proposal = undefined
    record.nextProposeAt = s.now + backoff(s, s.now)
    return
  }
  p.value = chooseValue(p.promises, record.voters, epoch + 1, voters, floor => nextRevoked(s, floor), partialEpoch(s, record))
  log(s, 'rc-accept', { epoch, ballot, voters: p.value.voters })
  for (const v of record.voters) sendRc(s, v, { t: 'rc-accept', epoch, ballot, value: p.value })
}

export function onAccepted (s: PeerState, from: string, epoch: number, ballot: Ballot, sig: string | undefined): void {
  const record = s.current
  const p = record.proposal
  if (p?.value === undefined || p.epoch !== epoch || !sameBallot(p.ballot, ballot) || !record.voters.includes(from)) return
  p.accepts.set(from, sig)
  if (p.accepts.size < record.majority) return
  const value = p.value
  record.proposal = undefined
  count(s, 'rc-decided')
  // The accepting majority's signatures prove the decision to anyone who knows this epoch's voters (proof.ts).
  const sigs = [...p.accepts].flatMap(([voter, sig]) => sig === undefined ? [] : [{ voter, sig }])
  const proof: DecisionProof | undefined = sigs.length === p.accepts.size ? { ballot: p.ballot, sigs } : undefined
  const to = new Set([...record.voters, ...value.voters, ...s.observers.keys(), ...s.candidates.keys()])
  for (const peer of to) send(s, peer, { t: 'rc-decided', value, ...(proof === undefined ? {} : { proof }) })
  install(s, value, proof)
}

export function onNack (s: PeerState, epoch: number, ballot: Ballot): void {
  s.highestBallot = Math.max(s.highestBallot, ballot.n)
  const record = s.current
  const p = record.proposal
  if (p === undefined || p.epoch !== epoch || compareBallots(ballot, p.ballot) <= 0) return
  count(s, 'rc-nacked')
  record.proposal = undefined
  record.nextProposeAt = s.now + backoff(s, s.now)
}
