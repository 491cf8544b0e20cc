import * as C from '../../constants.js'
import type { Message } from '../../messages.js'
import type { EpochChange } from '../../types.js'
import { emit, send } from '../emit.js'
import { isInstalling, type PeerState } from '../state.js'

/** Asks for the decision that ended this peer's epoch (it saw a newer one). */
export function noticeEpoch (s: PeerState, from: string): void {
  if (isInstalling(s) || s.now - s.lastEpochFetch < C.DEFAULT_EPOCH_FETCH_MS) return
  s.lastEpochFetch = s.now
  const m: Message = { t: 'rc-fetch', epoch: s.current.epoch }
  for (const v of new Set([from, ...s.current.voters])) send(s, v, m)
}

/** Tells a peer still in an old epoch how it ended (it checks that this peer was a voter of it). */
export function tellStale (s: PeerState, to: string, epoch: number, asked = false): void {
  if (!asked && s.now - (s.staleToldAt.get(to) ?? -Infinity) < C.DEFAULT_EPOCH_FETCH_MS) return
  s.staleToldAt.set(to, s.now)
  if (s.staleToldAt.size > 1024) s.staleToldAt.delete(s.staleToldAt.keys().next().value as string)
  emit(s, { t: 'read-decision', replyTo: to, epoch: epoch + 1 })
}

/** The decision tellStale read (if this peer has it). */
export function onDecisionRead (s: PeerState, replyTo: string, change: EpochChange | undefined): void {
  if (change !== undefined) send(s, replyTo, { t: 'rc-decided', value: change })
}
