import { entriesStatement } from '../batch-signing.js'
import * as C from '../constants.js'
import type { Message, TreeHello } from '../messages.js'
import type { Batch, CheckpointReport, DurableReport, WatermarkEntry } from '../types.js'
import { writeChunks } from './batcher.js'
import { count, emit, send } from './emit.js'
import { projectedParts } from './partitions.js'
import { suspects } from './reconfig/failure-detector.js'
import { roleOf, type PeerState } from './state.js'

/**
 * The dissemination tree (issue 23, `docs/design/tabs.md` §2). Without it
 * every voter sends each of its batches and entries to every observer, so a
 * relay's bytes, messages and CPU grow with the number of tabs. In the tree:
 *
 * - **The root** is the first voter of the epoch that this voter does not
 *   suspect (the entry hub's rule). An observer of every partition that asks
 *   for a place (`hello` with `tree`, no parent) is taken by the root as a
 *   child while it has a free slot (`rootSlots`), and otherwise pointed at
 *   the child heading the smallest subtree (`place {parent}`), which takes it
 *   or points it further down (each observer has `slots`). Until it has a
 *   place, every voter serves it as before.
 * - **A voter sends a placed observer nothing** unless it is that observer's
 *   parent: its children get its own batches and the other coordinators'
 *   batches it takes, and, at each of its publications, every voter's entry
 *   and the durable reports it holds in one `tw`, signed by it.
 * - **An observer passes on** to its children each batch it takes (whole,
 *   signed by its coordinator: each receiver checks it, forwarded.ts) and
 *   each `tw` it takes (checked against the root's key, or the very one it
 *   checked last: a voter's unchanged heartbeat signs to the same bytes).
 *   A forged one goes no further than its first receiver.
 * - **Repair.** A child that gets no `tw` from its parent for twice the
 *   failure detector's bound (its own stalls discounted), or that it strikes
 *   out, drops the parent; an observer that loses its parent, or closes,
 *   drops its children (they ask again), so a subtree cut off re-attaches and
 *   no cycle outlives a lost parent. Meanwhile the root serves it, and the
 *   other voters too once it has had no place for the failure detector's
 *   bound. Gaps are filled from the voters, as before.
 *
 * Observers of some partitions (feeds.ts) and candidates are not in the tree.
 */

/** Redirects an observer follows in a row without a place before it waits for its next hello. */
const MAX_REDIRECTS = 8
/** How long an observer does not hang under a parent it left for silence. */
const AVOID_MS = 60_000
/** Checks of tree watermark messages an observer has under way at most (more are dropped unchecked). */
export const MAX_CHECKING = 8
/** Largest subtree size a hello may claim (more is counted as this). */
const MAX_SIZE = 1 << 16

/** The voter that places newcomers: the first of the epoch this peer does not suspect. */
export function treeRoot (s: PeerState): string | undefined {
  return s.current.voters.find(v => v === s.id || !suspects(s, v, s.now))
}

/**
 * Whether this voter sends an observer what it sends the observers it
 * serves (batches, entries, durable reports, digests): not when it hangs
 * under another peer, nor when it has no place and this voter is not the
 * root, unless it has had none for the failure detector's bound. A test per
 * observer, with the root worked out once (it is asked for every observer
 * on every send).
 */
export function servedBy (s: PeerState): (o: string) => boolean {
  const t = s.tree
  if (t.elsewhere.size === 0 && t.unplaced.size === 0) return () => true
  const root = treeRoot(s) === s.id
  return o => {
    if (t.elsewhere.has(o)) return false
    const since = t.unplaced.get(o)
    return since === undefined || root || s.now - since >= s.options.suspectMs
  }
}

/** Whether the root serves the observers with no place yet as it serves its children: this peer is the root voter. */
function rootOfUnplaced (s: PeerState): boolean {
  return s.tree.unplaced.size > 0 && roleOf(s) === 'voter' && treeRoot(s) === s.id
}

/** Whom this peer passes batches and `tw` down to: its children, and at the root the observers with no place yet. */
export function downTargets (s: PeerState): readonly string[] {
  const t = s.tree
  if (!rootOfUnplaced(s)) return [...t.children.keys()]
  return [...t.children.keys(), ...t.unplaced.keys()]
}

/** Whether this peer passes anything down (downTargets is not empty), without building the list. */
export function passesDown (s: PeerState): boolean {
  return s.tree.children.size > 0 || rootOfUnplaced(s)
}

/** Whether `o` is one of downTargets, as a test (the list worked out once). */
export function isDownTarget (s: PeerState): (o: string) => boolean {
  const t = s.tree
  const unplaced = rootOfUnplaced(s)
  return o => t.children.has(o) || (unplaced && t.unplaced.has(o))
}

/** Whether this observer asks for a place in the tree (it follows every partition and is no candidate). */
export function inTree (s: PeerState): boolean {
  // It checks what it is passed, so it needs keys.
  // Not in a partitioned group yet: a root placed on a replica set holds projections of the other sets' batches, which
  // an observer takes only from their coordinators (a projection passed on is refused).
  return s.options.tree.join && s.options.signs && roleOf(s) !== 'voter' && !s.candidate && projectedParts(s) === undefined && s.config.partitions === undefined
}

/** Whether this peer serves children now: a voter, or an observer in the tree under a parent. */
function mayParent (s: PeerState): boolean {
  return s.options.signs && (roleOf(s) === 'voter' || (inTree(s) && s.tree.parent !== undefined))
}

/** What this observer says of itself in a hello to `to` (its parent, the peer it asks, or a voter). */
export function treeHello (s: PeerState, parent: string | undefined): TreeHello {
  let size = 1
  for (const c of s.tree.children.values()) size += c.size
  const addrs = s.options.tree.addresses()
  const not = [...[...s.shunned].filter(([, x]) => x.until > s.now).map(([p]) => p), ...[...s.tree.avoid].filter(([, until]) => until > s.now).map(([p]) => p)].slice(0, 8)
  return { ...(parent === undefined ? {} : { parent }), size: Math.min(size, MAX_SIZE), ...(addrs.length === 0 ? {} : { addrs: addrs.slice(0, 8) }), ...(not.length === 0 ? {} : { not }) }
}

/**
 * A hello with `tree`: the sender hangs under another peer (a voter then
 * sends it nothing but answers), asks this peer for a place or keeps it, or
 * (no parent) asks the root.
 */
/**
 * A hello with no tree in it, at a voter: `from` is not in the tree (any more: an observer that now asks to be a
 * voter, or restarted without it), so it is served as any observer is, not left to a parent it no longer has.
 * (An observer parent keeps its children: the only hello with no tree it gets is a peer reaching out.)
 */
export function notInTree (s: PeerState, from: string): void {
  s.tree.children.delete(from)
  s.tree.unplaced.delete(from)
  s.tree.elsewhere.delete(from)
}

export function onTreeHello (s: PeerState, from: string, t: TreeHello): void {
  const tree = s.tree
  const voter = roleOf(s) === 'voter'
  // Under a voter this one, the root, suspects, or under a peer that is neither a voter now nor an observer it hears (a voter
  // voted out): the root offers to adopt it, with its subtree (an observer moves only from under a voter).
  const adopt = t.parent !== undefined && t.parent !== s.id && voter && treeRoot(s) === s.id &&
    (s.current.voters.includes(t.parent) ? suspects(s, t.parent, s.now) : !s.observers.has(t.parent))
  if (t.parent !== undefined && t.parent !== s.id && !adopt) {
    tree.children.delete(from)
    tree.unplaced.delete(from)
    if (voter) tree.elsewhere.set(from, t.parent)
    return
  }
  tree.elsewhere.delete(from)
  if (t.parent === undefined) {
    tree.children.delete(from)
    if (voter && !tree.unplaced.has(from)) {
      tree.unplaced.set(from, s.now)
      // It gets a whole `tw` next (it may have missed entries while it had a parent).
      tree.wantFull = true
    }
    // The root serves an observer with no place, and finds it one; the other voters serve it too once it has had none
    // for the failure detector's bound (the root may be gone).
    if (!voter || treeRoot(s) !== s.id) return
  } else {
    tree.unplaced.delete(from)
  }
  // Not its own parent (that would make a cycle), and among voters only the root takes new children.
  const child = tree.children.get(from)
  if (!mayParent(s) || from === tree.parent?.id || (voter && child === undefined && treeRoot(s) !== s.id)) {
    send(s, from, { t: 'place' })
    return
  }
  const slots = voter ? s.options.tree.rootSlots : s.options.tree.slots
  if (child !== undefined || tree.children.size < slots) {
    tree.children.set(from, { size: Math.max(1, Math.min(t.size, MAX_SIZE)), seen: s.now, addrs: t.addrs ?? [] })
    tree.unplaced.delete(from)
    if (child === undefined) {
      count(s, 'tree-child-taken')
      tree.wantFull = true
    }
    send(s, from, { t: 'place', parent: s.id })
    return
  }
  // Full: the child heading the smallest subtree takes it, or points it further down.
  let best: [string, { size: number, addrs: readonly string[] }] | undefined
  for (const [id, c] of tree.children) if (id !== from && t.not?.includes(id) !== true && (best === undefined || c.size < best[1].size)) best = [id, c]
  if (best === undefined) {
    send(s, from, { t: 'place' })
    return
  }
  // Counted at once, so the next newcomer goes elsewhere before this one says hello there.
  best[1].size++
  count(s, 'tree-redirected')
  send(s, from, { t: 'place', parent: best[0], addrs: best[1].addrs })
}

/** A `place`: taken as `from`'s child, pointed at another peer, or (no parent) not placed under `from`. */
export function onPlace (s: PeerState, from: string, parent: string | undefined, addrs: readonly string[] | undefined): void {
  const tree = s.tree
  if (!inTree(s)) return
  const mine = tree.parent?.id
  if (parent === undefined) {
    if (from === mine) unplace(s)
    if (tree.asking?.id === from) tree.asking = undefined
    return
  }
  // Only a voter, the peer this observer asked, or its parent places it.
  if (!s.current.voters.includes(from) && from !== tree.asking?.id && from !== mine) {
    count(s, 'place-refused')
    return
  }
  // A voter may move it from under another voter (the root adopting the children of one it suspects): its subtree moves along.
  const moved = mine !== undefined && parent === from && mine !== from && s.current.voters.includes(from) && tree.parent?.voter === true
  if ((mine !== undefined && !moved) || parent === s.id) return
  // Not under a peer this observer struck out (it forged): it asks the voters again.
  if ((s.shunned.get(parent)?.until ?? -Infinity) > s.now) {
    count(s, 'place-refused')
    return
  }
  if (parent === from) {
    if (moved) count(s, 'tree-moved')
    tree.parent = { id: from, heard: s.now, voter: s.current.voters.includes(from) }
    tree.asking = undefined
    tree.redirects = 0
    count(s, 'tree-placed')
    // The voters hear at once that it has a place (they stop sending to it).
    s.lastHello = -Infinity
    return
  }
  if (tree.redirects >= MAX_REDIRECTS) return
  tree.redirects++
  tree.asking = { id: parent, at: s.now }
  if (addrs !== undefined && addrs.length > 0) emit(s, { t: 'connect', peer: parent, addrs })
  send(s, parent, { t: 'hello', epoch: s.current.epoch, tree: treeHello(s, parent) })
}

/** This observer leaves its place: its children are told to find another, and the voters serve it again. */
function unplace (s: PeerState): void {
  const tree = s.tree
  if (tree.parent === undefined) return
  tree.parent = undefined
  count(s, 'tree-unplaced')
  for (const c of tree.children.keys()) send(s, c, { t: 'place' })
  tree.children.clear()
  s.lastHello = -Infinity
}

/** Timeout: silent children go; an observer whose parent sent no `tw` for twice the failure detector's bound leaves its place. */
export function tickTree (s: PeerState): void {
  const tree = s.tree
  for (const [id, c] of tree.children) if (s.now - c.seen > C.DEFAULT_OBSERVER_TTL_MS) tree.children.delete(id)
  for (const o of tree.elsewhere.keys()) if (!s.observers.has(o)) tree.elsewhere.delete(o)
  for (const o of tree.unplaced.keys()) if (!s.observers.has(o)) tree.unplaced.delete(o)
  if (!inTree(s)) {
    tree.parent = undefined
    if (roleOf(s) !== 'voter' && tree.children.size > 0) {
      // A voter voted out (or a peer that left the tree): its children find other places now.
      for (const c of tree.children.keys()) send(s, c, { t: 'place' })
      tree.children.clear()
    }
    return
  }
  // Twice the failure detector's bound: a parent on a busy machine is slow before it is gone, and its whole subtree moves with it.
  if (tree.parent !== undefined && s.now - tree.parent.heard > 2 * s.options.suspectMs) {
    // Not under that one again for a while: a parent that keeps its place and passes nothing on would hold its subtree.
    tree.avoid.set(tree.parent.id, s.now + AVOID_MS)
    if (tree.avoid.size > 64) for (const [p, until] of tree.avoid) if (until <= s.now) tree.avoid.delete(p)
    unplace(s)
  }
  if (tree.asking !== undefined && s.now - tree.asking.at > s.options.suspectMs) tree.asking = undefined
  if (tree.parent === undefined && tree.asking === undefined) tree.redirects = 0
}

/** The observer `from` was struck out (forged batches or entries): if it is this observer's parent, the place goes. */
export function parentStruckOut (s: PeerState, from: string): void {
  if (s.tree.parent?.id === from) unplace(s)
}

/** Batches this peer just took go on to its children (whole and signed; they check them). */
export function passDown (s: PeerState, batches: readonly Batch[]): void {
  if (batches.length === 0) return
  if (!passesDown(s)) return
  const to = downTargets(s)
  for (const chunk of writeChunks(batches)) {
    const m: Message = { t: 'write', batches: chunk, wm: [] }
    for (const c of to) send(s, c, m)
  }
}

/**
 * At a voter's publication: its children get, signed, the voters' entries of
 * the epoch that rose since the last `tw` and the durable reports it holds if
 * they changed, at most once every TREE_ENTRIES_MS; all of them once a
 * heartbeat (a child that missed one, or a new child, is whole again).
 */
export function publishDown (s: PeerState, checkpointsDown: () => CheckpointReport[]): void {
  const tree = s.tree
  if (roleOf(s) !== 'voter' || !passesDown(s) || !s.options.signs) return
  // At most every TREE_ENTRIES_MS, whole ones too (a newcomer's wish for one waits that long).
  if (s.now - tree.lastTwAt < C.TREE_ENTRIES_MS) return
  const full = tree.wantFull || s.now - tree.lastFullAt >= s.options.idleHeartbeatMs
  const key = (e: WatermarkEntry): string => `${e.epoch}/${e.svw}/${e.count}`
  const wm = s.current.wm.entries().filter(e => e.epoch === s.current.epoch && (full || tree.sent.get(e.voter) !== key(e)))
  const h = s.history
  const reports: DurableReport[] = [{ voter: s.id, durable: h.durable, gc: h.collected }]
  for (const [voter, r] of h.reported) if (voter !== s.id && s.current.voters.includes(voter)) reports.push({ voter, durable: r.durable, gc: r.gc })
  const durKey = reports.map(d => `${d.voter}/${d.durable}/${d.gc}`).join()
  const dur = full || durKey !== tree.sentDur ? reports : []
  // The voters' latest digest checkpoints (divergence.ts): an observer below another compares its own with them.
  const cks = checkpointsDown()
  const ckKey = cks.map(c => `${c.voter}/${c.count}`).join()
  const ck = full || ckKey !== tree.sentCk ? cks : []
  if (wm.length === 0 && dur.length === 0 && ck.length === 0) return
  for (const e of wm) tree.sent.set(e.voter, key(e))
  tree.sentDur = durKey
  tree.sentCk = ckKey
  // A stamp that only rises: a receiver takes each voter's `tw` once, in order (a replay is dropped unchecked).
  tree.twAt = Math.max(s.now, tree.twAt + 1)
  tree.lastTwAt = s.now
  if (full) {
    tree.lastFullAt = s.now
    tree.wantFull = false
  }
  const message = { t: 'tw', at: tree.twAt, wm, ...(dur.length === 0 ? {} : { dur }), ...(ck.length === 0 ? {} : { ck }), by: s.id, sig: '' } as const
  emit(s, { t: 'sign-entries', statement: entriesStatement(s.config.groupId, message), message })
}

export function onEntriesSigned (s: PeerState, message: Extract<Message, { t: 'tw' }>, sig: string | undefined): void {
  if (sig === undefined) {
    count(s, 'tw-unsigned')
    return
  }
  const m: Message = { ...message, sig }
  for (const c of downTargets(s)) send(s, c, m)
}
