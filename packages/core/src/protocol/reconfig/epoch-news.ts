import * as C from '../../constants.js'
import type { Message } from '../../messages.js'
import type { EpochChange } from '../../types.js'
import { count, emit, send } from '../emit.js'
import { isInstalling, type PeerState } from '../state.js'
import type { DecisionProof } from './proof.js'
import { heardAt } from './failure-detector.js'

/** Asks for the decision that ended this peer's epoch (it saw a newer one). */
export function noticeEpoch (s: PeerState, from: string): void {
  if (isInstalling(s) || s.now - s.lastEpochFetch < C.DEFAULT_EPOCH_FETCH_MS) return
  s.lastEpochFetch = s.now
  const m: Message = { t: 'rc-fetch', epoch: s.current.epoch }
  for (const v of new Set([from, ...s.current.voters])) send(s, v, m)
}

/**
 * A peer that has heard from none of its epoch's other voters for twice the
 * failure detector's bound asks the members it can reach (its host's
 * contacts) where the group is: one in a later epoch answers with the next
 * decision and its proof (tellStale), so a replica every voter of whose
 * epoch is gone for good still finds its way to the present.
 */
export function reachOut (s: PeerState): void {
  if (isInstalling(s) || s.now - s.lastReachOut < C.DEFAULT_HELLO_INTERVAL_MS) return
  const record = s.current
  const others = record.voters.filter(v => v !== s.id)
  const silentSince = s.now - 2 * s.options.suspectMs
  // A quiet voter's silence is excused (quiesce.ts).
  if (others.length === 0 || others.some(v => heardAt(record, v) > silentSince || record.quiet.has(v))) return
  const contacts = s.options.contacts().filter(p => p !== s.id && !record.voters.includes(p))
  if (contacts.length === 0) return
  s.lastReachOut = s.now
  count(s, 'rc-reach-out')
  const hello: Message = { t: 'hello', epoch: record.epoch }
  for (const p of contacts.slice(0, C.MAX_REACH_OUT)) send(s, p, hello)
}

/** Tells a peer still in an old epoch how it ended (it checks that this peer was a voter of it). */
export function tellStale (s: PeerState, to: string, epoch: number, asked = false): void {
  if (!asked && s.now - (s.staleToldAt.get(to) ?? -Infinity) < C.DEFAULT_EPOCH_FETCH_MS) return
  s.staleToldAt.set(to, s.now)
  if (s.staleToldAt.size > 1024) s.staleToldAt.delete(s.staleToldAt.keys().next().value as string)
  emit(s, { t: 'read-decision', replyTo: to, epoch: epoch + 1 })
}

/** The decision tellStale read (if this peer has it), with its proof when it has one. */
export function onDecisionRead (s: PeerState, replyTo: string, change: EpochChange | undefined, proof: DecisionProof | undefined): void {
  if (change !== undefined) send(s, replyTo, { t: 'rc-decided', value: change, ...(proof === undefined ? {} : { proof }) })
}
