import type { Message } from '../../messages.js'
import type { EpochChange, GroupConfig, Thunk } from '../../types.js'
import type { Value } from '../../value.js'
import { failConfirmations } from '../confirm.js'
import { route } from '../coordinator.js'
import { send, type PeerEnv } from '../env.js'
import { kickEvaluator } from '../evaluator.js'
import { publish } from '../promise.js'
import { acceptThunk } from '../replica.js'
import { fail } from '../requests.js'
import { applyCut, count, newEpochRecord, roleOf, type PeerState } from '../state.js'
import { keeps } from './choose-value.js'
import { noticeEpoch } from './epoch-news.js'

/** A decision is taken only from a voter of the epoch it ends; older ones are replays, newer ones need the ones between. */
export function onDecided (s: PeerState, env: PeerEnv, from: string, value: EpochChange): void {
  if (value.epoch <= s.current.epoch) {
    count(s, 'rc-decided-replay')
    return
  }
  if (value.epoch > s.current.epoch + 1) {
    noticeEpoch(s, env, from)
    return
  }
  if (!s.current.voters.includes(from)) {
    count(s, 'rc-decided-refused')
    return
  }
  void install(s, env, value)
}

/**
 * Installs the decided change to `value.epoch`: persists it, cuts the old
 * epoch (kept thunks stay, the rest are aborted), starts the new epoch
 * above the decided floor, re-submits this peer's aborted thunks with
 * their clientTxnIds (exactly once: the applier's records dedupe), and
 * mints what waited while sealed.
 */
export async function install (s: PeerState, env: PeerEnv, value: EpochChange): Promise<void> {
  if (s.installing || value.epoch !== s.current.epoch + 1) return
  s.installing = true
  try {
    const config: GroupConfig = { ...s.config, epoch: value.epoch, voters: value.voters }
    await env.store.write({ meta: [[`decision:${value.epoch}`, value as unknown as Value], ['config', config as unknown as Value]], durability: 'strict' })
    if (s.closed) return
    const old = s.current
    const wasVoter = old.voters.includes(s.id)
    applyCut(old, value)
    const ownCut = value.cuts.find(c => c.coordinator === s.id)
    const aborted: Thunk[] = []
    for (const e of old.coordinator.inflight.values()) if (!keeps(ownCut, e.thunk.seq)) aborted.push(e.thunk)
    old.coordinator.inflight.clear()
    old.coordinator.outbox = []
    s.current = newEpochRecord(value.epoch, value.voters, env.clock.now())
    s.epochs.set(value.epoch, s.current)
    s.config = config
    s.minter.floor(value.floor)
    for (const v of value.voters) { s.observers.delete(v); s.candidates.delete(v) }
    s.installing = false
    failConfirmations(s)
    for (const t of value.thunks) acceptThunk(s, env, t, undefined)
    count(s, 'rc-installed')
    env.log('rc-installed', { epoch: value.epoch, voters: value.voters, aborted: aborted.length, kept: value.thunks.length })
    if (wasVoter) {
      const m: Message = { t: 'rc-decided', value }
      for (const peer of new Set([...s.observers.keys(), ...s.candidates.keys(), ...value.voters])) send(s, env, peer, m)
    }
    // Aborted thunks never took effect anywhere: their submissions go round again under the same clientTxnId.
    for (const t of aborted) {
      s.minted.delete(t.clientTxnId)
      count(s, 'rc-resubmitted')
      if (s.waiters.has(t.clientTxnId)) route(s, env, { clientTxnId: t.clientTxnId, procedure: t.procedure, hash: t.hash, args: t.args })
    }
    const deferred = [...s.deferred.values()]
    s.deferred.clear()
    for (const req of deferred) if (s.waiters.has(req.clientTxnId)) route(s, env, req)
    for (const l of env.epochListeners) l({ epoch: value.epoch, voters: value.voters, aborted: aborted.length })
    if (roleOf(s) === 'voter') publish(s, env)
    else s.lastHello = -Infinity
    kickEvaluator(s, env)
  } catch (err) {
    fail(s, env, err)
  } finally {
    s.installing = false
  }
}
