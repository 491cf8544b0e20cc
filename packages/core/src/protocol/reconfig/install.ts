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
import { applyCut, newEpochRecord, roleOf, type PeerState } from '../state.js'
import { decisionEntry, metaEntry } from '../meta.js'
import { keeps } from './choose-value.js'
import { noticeEpoch } from './epoch-news.js'

/** A decision is taken only from a voter of the epoch it ends; older ones are replays, newer ones need the ones between. */
export function onDecided (s: PeerState, from: string, value: EpochChange): void {
  if (value.epoch <= s.current.epoch) {
    count(s, 'rc-decided-replay')
    return
  }
  if (value.epoch > s.current.epoch + 1) {
    noticeEpoch(s, from)
    return
  }
  if (!s.current.voters.includes(from)) {
    count(s, 'rc-decided-refused')
    return
  }
  install(s, value)
}

/**
 * Installs the decided change to `value.epoch`: persists it, cuts the old
 * epoch (kept batches stay, the rest are aborted), starts the new epoch
 * above the decided floor, re-submits this peer's aborted thunks with
 * their clientTxnIds (exactly once: the applier's records dedupe), and
 * mints what waited while sealed.
 */
export function install (s: PeerState, value: EpochChange): void {
  if (s.phase !== 'running' || value.epoch !== s.current.epoch + 1) return
  s.phase = 'installing'
  const config: GroupConfig = { ...s.config, epoch: value.epoch, voters: value.voters }
  emit(s, {
    t: 'persist',
    batch: { meta: [decisionEntry(value), metaEntry('config', config)], durability: 'strict' },
    done: { t: 'decision-persisted', change: value, config }
  })
}

export function onDecisionPersisted (s: PeerState, value: EpochChange, config: GroupConfig): void {
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
  readsUnconfirmed(s, failConfirmations(s))
  for (const b of value.batches) acceptBatch(s, b, undefined)
  count(s, 'rc-installed')
  log(s, 'rc-installed', { epoch: value.epoch, voters: value.voters, aborted: aborted.length, kept: value.batches.length })
  if (wasVoter) {
    const m: Message = { t: 'rc-decided', value }
    for (const peer of new Set([...s.observers.keys(), ...s.candidates.keys(), ...value.voters])) send(s, peer, m)
  }
  // Aborted thunks never took effect anywhere: their submissions go round again under the same clientTxnId.
  for (const t of aborted) {
    s.minted.delete(t.clientTxnId)
    count(s, 'rc-resubmitted')
    if (s.waiters.has(t.clientTxnId)) route(s, { clientTxnId: t.clientTxnId, procedure: t.procedure, hash: t.hash, args: t.args, firstAt: t.firstAt })
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
  if (roleOf(s) === 'voter') publish(s)
  else s.lastHello = -Infinity
  kickEvaluator(s)
}
