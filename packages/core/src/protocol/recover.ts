import type { Cursor } from '../apply.js'
import { Hasher } from '../hash.js'
import type { Timestamp } from '../timestamp.js'
import type { EpochChange, GroupConfig } from '../types.js'
import type { PeerEnv } from './env.js'
import { kickEvaluator } from './evaluator.js'
import { advanceHave, applyCut, cutOff, isSealed, newEpochRecord, type AcceptorState, type EpochRecord, type PeerState } from './state.js'

/**
 * Rebuilds a peer's state from what its store persisted: the installed
 * epochs, the evaluation cursor, unevaluated thunks, its Paxos promises, and
 * (for a voter) its own sequence and clock floor, so it never reuses a
 * sequence number or a promise.
 */
export async function recover (s: PeerState, env: PeerEnv, initial: GroupConfig): Promise<void> {
  const store = env.store
  const cursor = await store.getMeta('cursor') as Cursor | undefined
  const stored = await store.getMeta('config') as GroupConfig | undefined
  const target = stored !== undefined && stored.groupId === initial.groupId && stored.epoch > initial.epoch ? stored.epoch : initial.epoch
  // Rebuild the epochs from the one the cursor is in up to the newest installed, applying each decided cut.
  const startEpoch = cursor?.epoch !== undefined && cursor.epoch >= initial.epoch ? cursor.epoch : initial.epoch
  let voters = initial.voters
  if (startEpoch !== initial.epoch) {
    const d = await store.getMeta(`decision:${startEpoch}`) as EpochChange | undefined
    if (d !== undefined) voters = d.voters
  }
  s.epochs.clear()
  let record = newEpochRecord(startEpoch, voters, env.clock.now())
  s.epochs.set(startEpoch, record)
  let lastFloor: Timestamp | undefined
  for (let e = startEpoch + 1; e <= target; e++) {
    const d = await store.getMeta(`decision:${e}`) as EpochChange | undefined
    if (d === undefined) break
    applyCut(record, d)
    lastFloor = d.floor
    record = newEpochRecord(e, d.voters, env.clock.now())
    s.epochs.set(e, record)
  }
  s.current = record
  s.config = { ...initial, epoch: record.epoch, voters: record.voters }
  s.evaluatingEpoch = startEpoch
  if (lastFloor !== undefined) s.minter.floor(lastFloor)
  const acceptor = await store.getMeta('paxos') as AcceptorState | undefined
  if (acceptor !== undefined && acceptor.epoch === s.current.epoch) {
    s.current.acceptor = acceptor
    if (acceptor.promised !== undefined) s.highestBallot = acceptor.promised.n
    if (isSealed(s)) s.current.sealedAt = env.clock.now()
  } else {
    s.current.acceptor = { epoch: s.current.epoch }
  }
  const first = s.epochs.get(s.evaluatingEpoch) as EpochRecord
  if (cursor !== undefined) {
    s.frontier = cursor.frontier
    s.lastEvaluated = cursor.last
    s.evaluatedCount = cursor.count
    s.hasher = Hasher.restore(cursor.digest)
    if (cursor.epoch === undefined || cursor.epoch === first.epoch) {
      for (const [c, n] of Object.entries(cursor.evalNext)) {
        const stream = first.streams.get(c)
        if (stream !== undefined) { stream.evalNext = n; stream.have = n - 1 }
      }
    }
  }
  const lease = await store.getMeta('clockLease')
  if (typeof lease === 'number') {
    s.clockLease = lease
    s.minter.floorMs(lease)
  }
  const coordinator = s.current.coordinator
  for (const t of await store.unsettled()) {
    const ep = s.epochs.get(t.epoch)
    const stream = ep?.streams.get(t.coordinator)
    if (ep === undefined || stream === undefined || t.seq < stream.evalNext) continue
    if (cutOff(ep, stream, t.seq)) continue
    stream.held.set(t.seq, t)
    if (t.coordinator === s.id) s.minter.floor(t.ts)
    if (t.coordinator === s.id && ep === s.current) {
      coordinator.nextSeq = Math.max(coordinator.nextSeq, t.seq + 1)
      s.minted.set(t.clientTxnId, t.ts)
      // Not known to be on a majority any more: send it again until acked.
      coordinator.inflight.set(t.seq, { thunk: t, acks: new Set([s.id]), mintedAt: env.clock.now(), sentAt: -Infinity, tries: 0 })
    }
  }
  for (const ep of s.epochs.values()) for (const stream of ep.streams.values()) advanceHave(stream)
  const self = s.current.streams.get(s.id)
  if (self !== undefined) coordinator.nextSeq = Math.max(coordinator.nextSeq, self.have + 1, self.evalNext)
  s.current.startedAt = env.clock.now()
  env.log('recovered', { epoch: s.current.epoch, evaluatingEpoch: s.evaluatingEpoch, frontier: s.frontier, evaluated: s.evaluatedCount, nextSeq: coordinator.nextSeq })
  kickEvaluator(s, env)
}
