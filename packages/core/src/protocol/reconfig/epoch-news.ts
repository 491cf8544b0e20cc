import * as C from '../../constants.js'
import type { Message } from '../../messages.js'
import type { EpochChange } from '../../types.js'
import { send, type PeerEnv } from '../env.js'
import { fail } from '../requests.js'
import type { PeerState } from '../state.js'

/** Asks for the decision that ended this peer's epoch (it saw a newer one). */
export function noticeEpoch (s: PeerState, env: PeerEnv, from: string): void {
  const now = env.clock.now()
  if (s.installing || now - s.lastEpochFetch < C.DEFAULT_EPOCH_FETCH_MS) return
  s.lastEpochFetch = now
  const m: Message = { t: 'rc-fetch', epoch: s.current.epoch }
  for (const v of new Set([from, ...s.current.voters])) send(s, env, v, m)
}

/** Tells a peer still in an old epoch how it ended (it checks that this peer was a voter of it). */
export function tellStale (s: PeerState, env: PeerEnv, to: string, epoch: number, asked = false): void {
  const now = env.clock.now()
  if (!asked && now - (s.staleToldAt.get(to) ?? -Infinity) < C.DEFAULT_EPOCH_FETCH_MS) return
  s.staleToldAt.set(to, now)
  if (s.staleToldAt.size > 1024) s.staleToldAt.delete(s.staleToldAt.keys().next().value as string)
  void env.store.getMeta(`decision:${epoch + 1}`).then(value => {
    if (value !== undefined) send(s, env, to, { t: 'rc-decided', value: value as unknown as EpochChange })
  }, err => { fail(s, env, err) })
}
