import { entriesStatement, signedFields } from '../batch-signing.js'
import type { Message } from '../messages.js'
import type { Batch } from '../types.js'
import { count, emit, log, send } from './emit.js'
import { acceptBatch } from './replica.js'
import { MAX_CHECKING, parentStruckOut, passDown } from './tree.js'
import { compareCheckpoint } from './divergence.js'
import { holdingTag } from './partitions.js'
import { onDurableReport } from './horizon.js'
import { takeEntries } from './promise.js'
import { roleOf, type PeerState } from './state.js'

/**
 * Batches passed on by a member that is not a voter (issue 23,
 * `docs/design/tabs.md`). An observer takes a batch from anyone if its
 * coordinator's signature checks out; it checks each batch once, the first
 * time it would keep it (a copy of one it holds is dropped unchecked), and
 * only whole batches (projections stay between voters and their observers). A
 * forged or altered batch is refused and counted; a peer that sends a few is
 * not listened to for a while. Voters take batches only from their
 * coordinators, as before.
 */

/** Forged batches a peer may send before its batches are refused unread. */
const STRIKES = 3
/** How long such a peer's batches are refused. */
const SHUN_MS = 60_000

/** Whether this replica still lacks batch `b` (not held, not being written, not evaluated). */
export function lacks (s: PeerState, b: Batch): boolean {
  const stream = s.epochs.get(b.epoch)?.streams.get(b.coordinator)
  if (stream === undefined) return false
  return b.seq >= stream.evalNext && !stream.held.has(b.seq) && !stream.receiving.has(b.seq)
}

/** A non-voter's `write`: the batches this observer lacks, as their signatures cover them, go to be checked. */
export function onForwardedWrite (s: PeerState, from: string, batches: readonly Batch[]): void {
  const until = s.shunned.get(from)?.until ?? -Infinity
  if (until > s.now) {
    count(s, 'forwarded-shunned')
    return
  }
  // Whole batches only: a projection's signature covers the digests of the thunks it leaves out,
  // not which partitions they touch, so it cannot show that none of them is this observer's.
  const wanted = batches.filter(b => b.sig !== undefined && b.projected !== true && lacks(s, b)).map(signedFields)
  const unsigned = batches.filter(b => b.sig === undefined).length
  const parts = batches.filter(b => b.sig !== undefined && b.projected === true).length
  if (unsigned > 0) count(s, 'forwarded-unsigned', unsigned)
  if (parts > 0) count(s, 'forwarded-projection-refused', parts)
  if (wanted.length === 0) return
  count(s, 'forwarded-checked', wanted.length)
  emit(s, { t: 'verify-batches', from, batches: wanted })
}

/**
 * The check's answer: the good batches are stored as a gap fill would be
 * (and passed on down the tree); each forged one is a strike against its
 * sender. A peer that cannot check (no signer) takes nothing passed on, and
 * strikes no one.
 */
export function onBatchesVerified (s: PeerState, from: string, batches: readonly Batch[], ok: readonly boolean[], unchecked: boolean): void {
  if (unchecked) {
    count(s, 'forwarded-unchecked', batches.length)
    return
  }
  const taken: Batch[] = []
  batches.forEach((b, i) => {
    if (ok[i] === true) {
      if (lacks(s, b)) {
        acceptBatch(s, b, undefined)
        taken.push(b)
      }
      return
    }
    count(s, 'forged-batch')
    log(s, 'forged-batch', { from, coordinator: b.coordinator, epoch: b.epoch, seq: b.seq })
    strike(s, from)
  })
  // What this observer took goes on down the tree (tree.ts); counted when a member that is no voter passed it on.
  if (taken.length > 0 && !s.current.voters.includes(from)) count(s, 'batches-from-members', taken.length)
  passDown(s, taken)
}

/** A tree watermark message's check (tree.ts): a good one is taken and passed on (if still the newest); a forged one is a strike against its sender. */
export function onEntriesVerified (s: PeerState, from: string, m: Extract<Message, { t: 'tw' }>, ok: boolean, unchecked: boolean): void {
  s.tree.checking = Math.max(0, s.tree.checking - 1)
  if (unchecked) {
    count(s, 'forwarded-unchecked')
    return
  }
  if (!ok) {
    count(s, 'forged-entries')
    log(s, 'forged-entries', { from, by: m.by })
    strike(s, from)
    return
  }
  takeTree(s, from, m)
}

/**
 * A strike against `from` for something forged. Strikes lapse SHUN_MS after
 * the last one (and with the refusal they led to); a peer struck out is not
 * listened to, and stops being this observer's parent in the tree.
 */
function strike (s: PeerState, from: string): void {
  const held = s.shunned.get(from)
  const strikes = held !== undefined && s.now - held.last < SHUN_MS ? held.strikes + 1 : 1
  s.shunned.set(from, { strikes, last: s.now, until: strikes >= STRIKES ? s.now + SHUN_MS : -Infinity })
  if (strikes >= STRIKES) parentStruckOut(s, from)
  // Struck out: the host hangs up on it too (a voter is never hung up on: voters' own messages are not checked here).
  if (strikes === STRIKES && !s.current.voters.includes(from)) {
    count(s, 'forwarded-hung-up')
    emit(s, { t: 'disconnect', peer: from })
  }
  // Lapsed records go, so the table holds only peers that struck within the last SHUN_MS.
  if (s.shunned.size > 256) for (const [p, x] of s.shunned) if (s.now - x.last >= SHUN_MS && x.until <= s.now) s.shunned.delete(p)
}

/**
 * A `tw`: from a voter that signed it, taken; from this observer's parent,
 * checked. Only a current voter's, and only one newer than the last taken of
 * that voter (a replay is dropped unchecked: it cannot keep a parent that
 * passes nothing new on, nor go round a cycle). At most MAX_CHECKING checks
 * are under way at once.
 */
export function onTreeEntries (s: PeerState, from: string, m: Extract<Message, { t: 'tw' }>): void {
  if (roleOf(s) === 'voter') return
  const direct = from === m.by && s.current.voters.includes(from)
  if (!direct && from !== s.tree.parent?.id) {
    count(s, 'tw-not-parent')
    return
  }
  if ((s.shunned.get(from)?.until ?? -Infinity) > s.now) {
    count(s, 'forwarded-shunned')
    return
  }
  if (!s.current.voters.includes(m.by) || m.at <= (s.tree.lastTw.get(m.by) ?? -1)) {
    count(s, 'tw-stale')
    return
  }
  if (direct) {
    takeTree(s, from, m)
    return
  }
  if (s.tree.checking >= MAX_CHECKING) {
    count(s, 'tw-stale')
    return
  }
  s.tree.checking++
  count(s, 'tw-checked')
  emit(s, { t: 'verify-entries', from, message: m, statement: entriesStatement(s.config.groupId, m) })
}

/** Entries, reports and checkpoints of voter `m.by`'s word, if newer than the last taken: merged, the voters whose entries rose heard from, and all of it passed on. */
function takeTree (s: PeerState, from: string, m: Extract<Message, { t: 'tw' }>): void {
  const record = s.current
  const tree = s.tree
  if (!record.voters.includes(m.by) || m.at <= (tree.lastTw.get(m.by) ?? -1)) return
  tree.lastTw.set(m.by, m.at)
  for (const v of tree.lastTw.keys()) if (!record.voters.includes(v)) tree.lastTw.delete(v)
  if (tree.parent?.id === from) tree.parent.heard = s.now
  const taken = m.wm.filter(e => e.voter !== s.id && e.epoch === record.epoch && record.voters.includes(e.voter))
  for (const e of taken) if (e.svw > (record.wm.get(e.voter)?.svw ?? '')) record.lastHeard.set(e.voter, s.now)
  record.lastHeard.set(m.by, s.now)
  takeEntries(s, taken)
  for (const d of m.dur ?? []) onDurableReport(s, d.voter, d.durable, d.gc)
  for (const c of m.ck ?? []) compareCheckpoint(s, c.voter, c.count, c.digest, holdingTag(s))
  for (const c of tree.children.keys()) send(s, c, m)
}
