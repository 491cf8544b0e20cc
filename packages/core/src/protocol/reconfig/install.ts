import type { Message } from '../../messages.js'
import type { EpochChange, GroupConfig, Thunk } from '../../types.js'
import { failConfirmations } from '../confirm.js'
import { route } from '../coordinator.js'
import { kickEvaluator } from '../evaluator.js'
import { publish } from '../promise.js'
import { readsUnconfirmed } from '../reads.js'
import { acceptBatch } from '../replica.js'
import { deferOpen } from '../batcher.js'
import { count, emit, log, send, settle } from '../emit.js'
import { newEpochRecord, roleOf, type PeerState } from '../state.js'
import { applyCut } from '../cut.js'
import { decisionEntry, metaEntry } from '../meta.js'
import { keeps } from './choose-value.js'
import { noticeEpoch } from './epoch-news.js'
import { settleRevocations } from './revoke.js'
import { decisionStatement, proofCovers, type DecisionProof } from './proof.js'

/**
 * A decision is taken from a voter of the epoch it ends, or from anyone with
 * a proof (a majority of that epoch's voters' signatures, checked first);
 * older ones are replays, newer ones need the ones between.
 */
export function onDecided (s: PeerState, from: string, value: EpochChange, proof: DecisionProof | undefined): void {
  if (value.epoch <= s.current.epoch) {
    count(s, 'rc-decided-replay')
    return
  }
  if (value.epoch > s.current.epoch + 1) {
    noticeEpoch(s, from)
    return
  }
  if (s.current.voters.includes(from)) {
    install(s, value, proof)
    return
  }
  if (proof === undefined || !s.options.signs || !proofCovers(proof, s.current.voters)) {
    count(s, 'rc-decided-refused')
    return
  }
  // One check at a time: a member sending proofs that fail costs this peer one check per decision it is missing.
  if (s.checkingDecision || s.phase !== 'running') return
  s.checkingDecision = true
  emit(s, { t: 'verify-decision', from, change: value, proof, statement: decisionStatement(s.config.groupId, value.epoch - 1, proof.ballot, value) })
}

/** A relayed decision's signatures were checked: installed if they hold and it is still the next one. */
export function onDecisionVerified (s: PeerState, from: string, value: EpochChange, proof: DecisionProof, ok: boolean): void {
  s.checkingDecision = false
  if (!ok) {
    count(s, 'rc-decided-forged')
    log(s, 'rc-decided-forged', { from, epoch: value.epoch })
    return
  }
  if (value.epoch !== s.current.epoch + 1 || !proofCovers(proof, s.current.voters)) return
  count(s, 'rc-decided-relayed')
  install(s, value, proof, from)
}

/**
 * Installs the decided change to `value.epoch`: persists it, cuts the old
 * epoch (kept batches stay, the rest are aborted), starts the new epoch
 * above the decided floor, re-submits this peer's aborted thunks with
 * their clientTxnIds (exactly once: the applier's records dedupe), and
 * mints what waited while sealed.
 */
export function install (s: PeerState, value: EpochChange, proof: DecisionProof | undefined, relayedBy?: string): void {
  if (s.phase !== 'running' || value.epoch !== s.current.epoch + 1) return
  s.phase = 'installing'
  const config: GroupConfig = { ...s.config, epoch: value.epoch, voters: value.voters, ...(value.revoked === undefined ? {} : { revoked: value.revoked }) }
  emit(s, {
    t: 'persist',
    batch: { meta: [decisionEntry(value, proof), metaEntry('config', config)], durability: 'strict' },
    done: { t: 'decision-persisted', change: value, proof, config, ...(relayedBy === undefined ? {} : { relayedBy }) }
  })
}

export function onDecisionPersisted (s: PeerState, value: EpochChange, proof: DecisionProof | undefined, config: GroupConfig, relayedBy: string | undefined): void {
  if (s.phase !== 'installing') return
  s.phase = 'running'
  const old = s.current
  const wasVoter = old.voters.includes(s.id)
  applyCut(old, value)
  const ownCut = value.cuts.find(c => c.coordinator === s.id)
  const aborted: Thunk[] = []
  for (const e of old.coordinator.inflight.values()) if (!keeps(ownCut, e.batch.seq)) aborted.push(...e.batch.thunks)
  old.coordinator.inflight.clear()
  old.coordinator.outbox = []
  // Thunks minted but never sealed into a batch of the old epoch go round again too.
  deferOpen(s)
  s.current = newEpochRecord(value.epoch, value.voters, s.now)
  s.epochs.set(value.epoch, s.current)
  s.config = config
  s.minter.floor(value.floor)
  for (const v of value.voters) { s.observers.delete(v); s.candidates.delete(v) }
  // A revoked peer hears nothing more from this one (the host hangs up on it too).
  for (const r of value.revoked ?? []) if (r.kind === 'peer') { s.observers.delete(r.id); s.candidates.delete(r.id) }
  readsUnconfirmed(s, failConfirmations(s))
  for (const b of value.batches) acceptBatch(s, b, undefined)
  count(s, 'rc-installed')
  log(s, 'rc-installed', { epoch: value.epoch, voters: value.voters, aborted: aborted.length, kept: value.batches.length })
  if (wasVoter) {
    const m: Message = { t: 'rc-decided', value, ...(proof === undefined ? {} : { proof }) }
    for (const peer of new Set([...s.observers.keys(), ...s.candidates.keys(), ...value.voters])) send(s, peer, m)
  }
  // Aborted thunks never took effect anywhere: their submissions go round again under the same clientTxnId.
  for (const t of aborted) {
    s.minted.delete(t.clientTxnId)
    count(s, 'rc-resubmitted')
    if (s.waiters.has(t.clientTxnId)) route(s, { clientTxnId: t.clientTxnId, procedure: t.procedure, hash: t.hash, args: t.args, firstAt: t.firstAt, ...(t.caller === undefined ? {} : { caller: t.caller }) })
  }
  const deferred = [...s.deferred.values()]
  s.deferred.clear()
  for (const req of deferred) if (s.waiters.has(req.clientTxnId)) route(s, req)
  emit(s, { t: 'event', event: { t: 'epoch', epoch: value.epoch, voters: value.voters, aborted: aborted.length } })
  if (!value.voters.includes(s.id)) {
    // A leave completes once an epoch without this peer is installed.
    for (const call of s.leaves.keys()) settle(s, call, undefined)
    s.leaves.clear()
  }
  settleRevocations(s)
  if (roleOf(s) === 'voter') publish(s)
  else s.lastHello = -Infinity
  if (relayedBy !== undefined) {
    // The peer that passed this decision on is in a later epoch still, or was: ask it for the next one now.
    s.lastEpochFetch = s.now
    send(s, relayedBy, { t: 'rc-fetch', epoch: value.epoch })
  }
  kickEvaluator(s)
}
