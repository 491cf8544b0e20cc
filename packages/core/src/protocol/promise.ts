import { writeChunks } from './batcher.js'
import type { Message } from '../messages.js'
import { maxTimestamp, timestampMs, type Timestamp } from '../timestamp.js'
import type { Thunk, WatermarkEntry } from '../types.js'
import { kickEvaluator } from './evaluator.js'
import { noticeEpoch, tellStale } from './reconfig/epoch-news.js'
import { count, emit, send } from './emit.js'
import { isSealed, roleOf, type PeerState } from './state.js'
import { metaEntry } from './meta.js'
import { flushToObservers, publishToObservers } from './feeds.js'
import { entryHub, relayedEntries, relayEntries } from './entry-hub.js'
import { partialEpoch, sendWrites, tailsFor, takeTails } from './partial.js'

/**
 * The watermark from this peer's side: a voter's own entry (its promise),
 * the clock lease that makes a promise survive a crash, the hybrid clock,
 * and how entries travel (on writes and acks, and gossiped).
 */

/**
 * Merges watermark entries `from` sent. A peer speaks only for itself here:
 * only a voter's own entry is taken (the transport authenticates `from`), so
 * no member can raise another voter's promise. A busy voter's entries also
 * reach the others relayed by the entry hub (`mergeRelayed`, entry-hub.ts).
 */
export function mergeWatermark (s: PeerState, from: string, entries: readonly WatermarkEntry[]): void {
  const taken: WatermarkEntry[] = []
  for (const e of entries) {
    if (e.voter === s.id) continue
    if (e.voter !== from) {
      count(s, 'wm-not-own-refused')
      continue
    }
    if (e.epoch > s.current.epoch) {
      noticeEpoch(s, from)
      continue
    }
    if (e.epoch < s.current.epoch) {
      tellStale(s, from, e.epoch)
      continue
    }
    taken.push(e)
  }
  takeEntries(s, taken)
}

/** Merges entries of the current epoch, each of a voter of it other than this peer; evaluation goes on if the watermark rose. */
export function takeEntries (s: PeerState, entries: readonly WatermarkEntry[]): void {
  let raised = false
  for (const e of entries) {
    observeTimestamp(s, e.svw)
    if (s.current.wm.merge(e)) {
      raised = true
      s.current.wmMovedAt.set(e.voter, s.now)
      takeTails(s, e)
    }
  }
  if (raised) {
    s.knownWatermark = maxTimestamp(s.knownWatermark, s.current.wm.value)
    kickEvaluator(s)
  }
}

/** Hybrid clock: never promise below what peers already reached, within the skew bound. */
export function observeTimestamp (s: PeerState, ts: Timestamp): void {
  if (roleOf(s) !== 'voter') return
  if (timestampMs(ts) - s.now <= s.options.maxSkewMs) s.minter.floor(ts)
  else count(s, 'clock-skew-refused')
}

/**
 * This voter's entry: the lowest timestamp still in flight (in an unacked
 * batch or the open one), or a fresh timestamp that it promises never to go
 * below; and how many of its batches lie wholly below that point.
 */
function ownEntry (s: PeerState): WatermarkEntry | undefined {
  if (roleOf(s) !== 'voter') return undefined
  const coordinator = s.current.coordinator
  // Sealed: the epoch's history is being cut; promising more could let V pass the new epoch's floor.
  if (isSealed(s)) return coordinator.lastEntry
  coordinator.lastEntry = freshEntry(s)
  return coordinator.lastEntry
}

function freshEntry (s: PeerState): WatermarkEntry | undefined {
  const coordinator = s.current.coordinator
  const first = coordinator.inflight.values().next()
  if (!first.done) {
    const b = first.value.batch
    return withTails(s, { voter: s.id, epoch: s.current.epoch, svw: (b.thunks[0] as Thunk).ts, count: b.seq - 1 })
  }
  const open = coordinator.open[0]
  if (open !== undefined) return withTails(s, { voter: s.id, epoch: s.current.epoch, svw: open.ts, count: coordinator.nextSeq - 1 })
  const svw = s.minter.mint(s.now)
  // A promise must survive a crash: only promise within the persisted clock lease.
  if (timestampMs(svw) >= s.clockLease) {
    renewLease(s)
    s.promiseBlocked = true
    return coordinator.lastPromise
  }
  coordinator.lastPromise = withTails(s, { voter: s.id, epoch: s.current.epoch, svw, count: coordinator.nextSeq - 1 })
  return coordinator.lastPromise
}

/** In a partially replicated epoch, an entry says where each set's batches end (partial.ts). */
function withTails (s: PeerState, e: WatermarkEntry): WatermarkEntry {
  const tails = s.parts === undefined ? undefined : tailsFor(s, e.epoch, e.count)
  return tails === undefined ? e : { ...e, tails }
}

/** Extends the persisted clock lease once half of it is used; publishes again when it is durable. */
export function renewLease (s: PeerState): void {
  if (s.leaseWriting || Math.max(s.minter.lastMillis, s.now) + s.options.clockLeaseMs / 2 < s.clockLease) return
  s.leaseWriting = true
  const lease = Math.max(s.now, s.minter.lastMillis) + s.options.clockLeaseMs
  emit(s, { t: 'persist', batch: { meta: [metaEntry('clockLease', lease)], durability: 'strict' }, done: { t: 'lease-persisted', lease } })
}

export function onLeasePersisted (s: PeerState, lease: number): void {
  s.leaseWriting = false
  s.clockLease = Math.max(s.clockLease, lease)
  // A promise held back by the lease goes out now; a renewal ahead of time waits for the next publication.
  if (s.promiseBlocked) {
    s.promiseBlocked = false
    publish(s)
  }
}

/** What this peer says about the watermark: its own entry only (peers take no one's entry second-hand). */
export function watermarkEntries (s: PeerState): WatermarkEntry[] {
  const own = ownEntry(s)
  if (own === undefined) return []
  s.current.wm.merge(own)
  return [own]
}

/** Gossips this peer's watermark view to every voter and known observer. */
export function publish (s: PeerState): void {
  if (roleOf(s) !== 'voter') return
  s.lastGossip = s.now
  s.watermarkDirty = false
  const wm = watermarkEntries(s)
  const quiet = s.detector.quiet
  // A voter handing over says so with its entry, to every voter directly: the next one proposes the epoch without it at
  // once, so the hand-over finishes even if this one is frozen or gone right after (a tab's `freeze`, `pagehide`).
  const leaving = s.leaving
  const msg: Message = { t: 'wm', wm, ...(quiet ? { quiet } : {}), ...(leaving ? { leaving } : {}) }
  // Busy, through the hub; to every voter when this is the hub, at least once a heartbeat, and when quiet (entry-hub.ts).
  const hub = quiet || leaving ? undefined : entryHub(s)
  const coordinator = s.current.coordinator
  const direct = hub === undefined || hub === s.id || s.now - coordinator.lastDirect >= s.options.idleHeartbeatMs
  if (direct) coordinator.lastDirect = s.now
  s.current.wm.relaying = hub === s.id
  for (const v of direct || hub === undefined ? s.current.voters : [hub]) {
    send(s, v, msg)
    // A quiet voter owes an answer to a plain entry from now (quiesce.ts).
    if (!quiet && s.current.quiet.get(v) === Infinity) s.current.quiet.set(v, s.now)
  }
  if (hub === s.id) relayEntries(s)
  publishToObservers(s, wm)
  kickEvaluator(s)
}

/** Entries of other voters that `from`, the entry hub, relayed: merged as their own voters' (entry-hub.ts). */
export function mergeRelayed (s: PeerState, from: string, entries: readonly WatermarkEntry[]): void {
  const taken = relayedEntries(s, from, entries)
  if (taken !== undefined) takeEntries(s, taken)
}

/** Sends queued writes and a changed watermark at the end of the current turn, coalesced. */
export function scheduleFlush (s: PeerState): void {
  if (s.flushScheduled) return
  s.flushScheduled = true
  emit(s, { t: 'later', input: { t: 'flush' } })
}

export function flush (s: PeerState): void {
  s.flushScheduled = false
  if (s.phase === 'closed') return
  const coordinator = s.current.coordinator
  if (coordinator.outbox.length > 0) {
    const batches = coordinator.outbox
    coordinator.outbox = []
    const wm = watermarkEntries(s)
    if (partialEpoch(s, s.current)) {
      sendWrites(s, batches, wm)
    } else {
      for (const chunk of writeChunks(batches)) {
        const msg: Message = { t: 'write', batches: chunk, wm }
        for (const v of s.current.voters) send(s, v, msg)
      }
    }
    flushToObservers(s, batches, wm)
    s.lastGossip = s.now
  }
  if (s.watermarkDirty) publish(s)
}
