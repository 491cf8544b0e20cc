import { Hasher } from '../hash.js'
import { restoreHolding, startHolding } from './partitions.js'
import { restartTrail } from './part-votes.js'
import type { BatchRange, Store } from '../store.js'
import type { Value } from '../value.js'
import type { Timestamp } from '../timestamp.js'
import type { Batch, Cursor, EpochChange, GroupConfig, Thunk } from '../types.js'
import { isSealed, newEpochRecord, type EpochRecord, type PeerState } from './state.js'
import { advanceHave, applyCut, cutOff } from './cut.js'
import { META, decisionKey, decisionValue, metaValue, type AcceptorState } from './meta.js'
import { restartStates } from './state-votes.js'
import { noteDamagedBatches, onStateDamaged } from './damage.js'

/**
 * Recovery: what a peer's store persisted, read once when it opens, and the
 * state rebuilt from it (the installed epochs, the evaluation cursor,
 * unevaluated batches, its Paxos promises, and for a voter its own sequence
 * and clock floor, so it never reuses a sequence number or a promise).
 */

export interface Persisted {
  readonly cursor: Cursor | undefined
  readonly config: GroupConfig | undefined
  /** The decisions that started the epochs from the cursor's up to the newest installed one. */
  readonly decisions: ReadonlyMap<number, EpochChange>
  readonly acceptor: AcceptorState | undefined
  readonly clockLease: unknown
  /** Every stored batch not wholly evaluated, of the epochs from the cursor's on. */
  readonly batches: readonly Batch[]
  /** The cursor's record failed its check: the replica heals by snapshot (it resumes from the newest epoch it installed). */
  readonly cursorDamaged: boolean
  /** The seqs among those whose records the store found damaged, by coordinator and epoch. */
  readonly damaged: ReadonlyArray<{ readonly coordinator: string, readonly epoch: number, readonly seqs: readonly number[] }>
}

/** The epoch evaluation resumes in, and the newest one installed (both the newest when the cursor is damaged: a snapshot will set evaluation's place). */
function epochRange (cursor: Cursor | undefined, stored: GroupConfig | undefined, initial: GroupConfig, cursorDamaged = false): { start: number, target: number } {
  const target = stored !== undefined && stored.groupId === initial.groupId && stored.epoch > initial.epoch ? stored.epoch : initial.epoch
  const start = cursorDamaged ? target : cursor?.epoch !== undefined && cursor.epoch >= initial.epoch ? cursor.epoch : initial.epoch
  return { start, target }
}

/** What a driver answers a recovery read of a record that failed its check (only the cursor's is taken so; any other damaged record fails the open). */
export const DAMAGED_RECORD = Symbol('damaged record')

/** A recovery read of meta `name` through `read`: the cursor's damaged record is DAMAGED_RECORD, any other error is thrown. */
export function recoveryMeta<T> (name: string, read: () => T): T | typeof DAMAGED_RECORD {
  try {
    return read()
  } catch (err) {
    if (name === META.cursor && (err as Error).name === 'StoreCorruptionError') return DAMAGED_RECORD
    throw err
  }
}

/** One read recovery needs: a meta record, or a coordinator's batches of an epoch from `from` on. */
export type RecoveryRead = { readonly meta: string } | { readonly batches: { readonly coordinator: string, readonly epoch: number, readonly from: number } }

/**
 * The reads recovery makes, as a generator: it yields each read and is
 * resumed with its answer, so an async driver (`loadPersisted`) and a
 * synchronous one (the simulator's) share the one sequence.
 */
export function * recoveryReads (initial: GroupConfig): Generator<RecoveryRead, Persisted, unknown> {
  const rawCursor = yield { meta: META.cursor }
  const cursorDamaged = rawCursor === DAMAGED_RECORD
  const cursor = cursorDamaged ? undefined : metaValue('cursor', rawCursor as Value | undefined)
  const config = metaValue('config', (yield { meta: META.config }) as Value | undefined)
  const { start, target } = epochRange(cursor, config, initial, cursorDamaged)
  const decisions = new Map<number, EpochChange>()
  if (start !== initial.epoch) {
    const d = decisionValue((yield { meta: decisionKey(start) }) as Value | undefined)
    if (d !== undefined) decisions.set(start, d.change)
  }
  for (let e = start + 1; e <= target; e++) {
    const d = decisionValue((yield { meta: decisionKey(e) }) as Value | undefined)
    if (d === undefined) break
    decisions.set(e, d.change)
  }
  const acceptor = metaValue('paxos', (yield { meta: META.paxos }) as Value | undefined)
  const clockLease = yield { meta: META.clockLease }
  const batches: Batch[] = []
  const damaged: Array<{ coordinator: string, epoch: number, seqs: readonly number[] }> = []
  const cursorHere = cursor !== undefined && (cursor.epoch ?? initial.epoch) === start
  for (let e = start; e === start || decisions.has(e); e++) {
    // The decision that started an epoch names its voters; the genesis epoch has none.
    const voters = decisions.get(e)?.voters ?? initial.voters
    for (const coordinator of voters) {
      const from = e === start && cursorHere ? cursor.evalNext[coordinator] ?? 1 : 1
      const range = (yield { batches: { coordinator, epoch: e, from } }) as BatchRange
      batches.push(...range.batches)
      if (range.damaged.length > 0) damaged.push({ coordinator, epoch: e, seqs: range.damaged })
    }
  }
  return { cursor, cursorDamaged, config, decisions, acceptor, clockLease, batches, damaged }
}

/** Reads what `restore` needs from a store. */
export async function loadPersisted (store: Store, initial: GroupConfig): Promise<Persisted> {
  const reads = recoveryReads(initial)
  let next = reads.next()
  while (next.done !== true) {
    const read = next.value
    if ('meta' in read) {
      const name = read.meta
      const got = await store.getMeta(name).then(v => v, (err: unknown) => recoveryMeta(name, () => { throw err }))
      next = reads.next(got)
    } else {
      next = reads.next(await store.batchRange(read.batches.coordinator, read.batches.epoch, read.batches.from, Infinity))
    }
  }
  return next.value
}

/** Rebuilds `s` (fresh from newPeerState) from what its store persisted. */
export function restore (s: PeerState, persisted: Persisted, initial: GroupConfig): void {
  const { cursor, decisions } = persisted
  const { start, target } = epochRange(cursor, persisted.config, initial, persisted.cursorDamaged)
  // Rebuild the epochs from the one the cursor is in up to the newest installed, applying each decided cut.
  const voters = decisions.get(start)?.voters ?? initial.voters
  s.epochs.clear()
  let record = newEpochRecord(start, voters, s.now)
  s.epochs.set(start, record)
  let lastFloor: Timestamp | undefined
  for (let e = start + 1; e <= target; e++) {
    const d = decisions.get(e)
    if (d === undefined) break
    applyCut(record, d)
    lastFloor = d.floor
    record = newEpochRecord(e, d.voters, s.now)
    s.epochs.set(e, record)
  }
  s.current = record
  // Revocations are cumulative in each decision; the genesis epoch's come from the persisted configuration (none).
  const revoked = decisions.get(record.epoch)?.revoked ?? (persisted.config?.epoch === record.epoch ? persisted.config.revoked : undefined)
  s.config = { ...initial, epoch: record.epoch, voters: record.voters, ...(revoked === undefined ? {} : { revoked }) }
  s.evaluatingEpoch = start
  if (lastFloor !== undefined) s.minter.floor(lastFloor)
  const acceptor = persisted.acceptor
  if (acceptor !== undefined && acceptor.epoch === s.current.epoch) {
    s.current.acceptor = acceptor
    if (acceptor.promised !== undefined) s.highestBallot = acceptor.promised.n
    if (isSealed(s)) s.current.sealedAt = s.now
  } else {
    s.current.acceptor = { epoch: s.current.epoch }
  }
  const first = s.epochs.get(s.evaluatingEpoch) as EpochRecord
  if (cursor !== undefined) {
    s.frontier = cursor.frontier
    s.lastEvaluated = cursor.last
    s.evaluatedCount = cursor.count
    s.hasher = Hasher.restore(cursor.digest)
    s.stateDigest = cursor.state
    // What this replica can vouch for after a restart: its state at its cursor (checked by the scrub before it serves).
    restartStates(s, cursor)
    if (cursor.epoch === undefined || cursor.epoch === first.epoch) {
      for (const [c, n] of Object.entries(cursor.evalNext)) {
        const stream = first.streams.get(c)
        if (stream !== undefined) { stream.evalNext = n; stream.evalIndex = cursor.evalIndex?.[c] ?? 0; stream.have = n - 1 }
      }
    }
  }
  if (typeof persisted.clockLease === 'number') {
    s.clockLease = persisted.clockLease
    s.minter.floorMs(persisted.clockLease)
  }
  const coordinator = s.current.coordinator
  for (const b of persisted.batches) {
    const ep = s.epochs.get(b.epoch)
    const stream = ep?.streams.get(b.coordinator)
    if (ep === undefined || stream === undefined || b.seq < stream.evalNext) continue
    if (cutOff(ep, stream, b.seq)) continue
    // A projection was cut for the partitions followed when it came, which may not be today's (or this peer now
    // follows them all): fetched again from a voter for what it follows now.
    if (b.projected === true) continue
    stream.held.set(b.seq, b)
    if (b.coordinator !== s.id) continue
    s.minter.floor((b.thunks[b.thunks.length - 1] as Thunk).ts)
    if (ep !== s.current) continue
    coordinator.nextSeq = Math.max(coordinator.nextSeq, b.seq + 1)
    const from = b.seq === stream.evalNext ? stream.evalIndex : 0
    for (const t of b.thunks.slice(from)) s.minted.set(t.clientTxnId, t.ts)
    // Not known to be on a majority any more: send it again until acked.
    coordinator.inflight.set(b.seq, { batch: b, acks: new Set([s.id]), mintedAt: s.now, sentAt: -Infinity, tries: 0 })
  }
  for (const d of persisted.damaged) noteDamagedBatches(s, d.coordinator, d.epoch, d.seqs)
  // Where evaluation stood is unknown: nothing is evaluated or served before a snapshot sets it.
  if (persisted.cursorDamaged) onStateDamaged(s, { name: 'StoreCorruptionError', message: 'the cursor record failed its check' }, undefined, undefined)
  for (const ep of s.epochs.values()) for (const stream of ep.streams.values()) advanceHave(stream)
  const self = s.current.streams.get(s.id)
  if (self !== undefined) coordinator.nextSeq = Math.max(coordinator.nextSeq, self.have + 1, self.evalNext)
  s.current.startedAt = s.now
  if (cursor !== undefined) restoreHolding(s, cursor.holding)
  else startHolding(s)
  restartTrail(s, cursor ?? { frontier: s.frontier, last: s.lastEvaluated, count: 0, digest: s.hasher.state, evalNext: {} })
}
