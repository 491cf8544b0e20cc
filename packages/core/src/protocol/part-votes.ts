import type { Timestamp } from '../timestamp.js'
import type { Cursor } from '../types.js'
import type { AppliedRun } from '../run-rules.js'
import { count, log, send } from './emit.js'
import type { SnapshotFetch } from './history-state.js'
import type { PartState, PartTrail } from './part-state.js'
import { roleHolding } from './partitions.js'
import type { PeerState } from './state.js'

/**
 * A partitioned group's snapshots are vouched for partition by partition
 * (state-votes.ts does it for a group of one partition). Replicas hold
 * different partitions, evaluate different thunks and cut runs differently,
 * so they cannot compare digests after a count of thunks; but a partition's
 * state at a frontier is the same on every replica of it. So a cursor
 * carries each partition's StateDigest (they add up to its state digest,
 * which the snapshot's entries add up to), and the receiver asks each
 * partition's replicas for that partition's digest at the cursor's frontier:
 * it imports once a majority of every partition it is to hold vouch, its
 * source among them when it is one of them.
 *
 * Every replica keeps, per partition, the digest after each thunk that
 * changed it (its last TRAIL_KEPT), from its cursor on.
 */

const TRAIL_KEPT = 4096
/** Most frontiers a replica remembers being asked about before reaching them. */
const ASKS_KEPT = 64

/** The partitions' digests a cursor carries, where a replica's trail starts (restart, snapshot import). */
export function restartTrail (s: PeerState, cursor: Cursor): void {
  const p = s.parts
  if (p === undefined) return
  p.digests = new Map((cursor.parts ?? []).map(([q, a, b]) => [q, [a, b] as const]))
  p.trail.clear()
  for (const q of p.have) p.trail.set(q, { since: cursor.frontier, base: p.digests.get(q) ?? [0, 0], entries: [] })
}

/** After a run: each partition's digest after each thunk that changed it, and the asks waiting for it. */
export function recordPartStates (s: PeerState, applied: AppliedRun): void {
  const p = s.parts
  if (p === undefined) return
  for (const [q, a, b] of applied.cursor.parts ?? []) p.digests.set(q, [a, b])
  for (const [ts, q, a, b] of applied.partStates ?? []) {
    let t = p.trail.get(q)
    if (t === undefined) { t = { since: s.frontier, base: [0, 0], entries: [] }; p.trail.set(q, t) }
    t.entries.push([ts, a, b])
    if (t.entries.length > TRAIL_KEPT) {
      const [first, l0, l1] = t.entries.shift() as [Timestamp, number, number]
      t.base = [l0, l1]
      t.since = first
    }
  }
  for (const [at, who] of p.stateAsks) {
    if (at > s.frontier) continue
    p.stateAsks.delete(at)
    for (const [to, parts] of who) answer(s, to, at, parts)
  }
}

/** Partition `q`'s digest at frontier `at` (everything below it evaluated), if this replica can tell. */
function digestAt (p: PartState, s: PeerState, q: number, at: Timestamp): readonly [number, number] | undefined {
  const t: PartTrail | undefined = p.trail.get(q)
  if (t === undefined || !p.have.has(q) || at < t.since || at > s.frontier) return undefined
  let lanes = t.base
  for (const [ts, a, b] of t.entries) {
    if (ts >= at) break
    lanes = [a, b]
  }
  return lanes
}

function answer (s: PeerState, to: string, at: Timestamp, parts: readonly number[]): void {
  const p = s.parts as PartState
  const healing = s.history.heal !== undefined
  const states = parts.map(q => {
    const lanes = healing ? undefined : digestAt(p, s, q, at)
    return lanes === undefined ? [q] as const : [q, lanes[0], lanes[1]] as const
  })
  send(s, to, { t: 'pst-rep', at, states })
}

/** A replica checking a snapshot asks for these partitions' digests at `at`: now, or once evaluated that far. */
export function onPartStateRequest (s: PeerState, from: string, at: Timestamp, parts: readonly number[]): void {
  const p = s.parts
  if (p === undefined) return
  if (at <= s.frontier || s.history.heal !== undefined || s.history.fetch !== undefined) {
    answer(s, from, at, parts)
    return
  }
  let who = p.stateAsks.get(at)
  if (who === undefined) {
    if (p.stateAsks.size >= ASKS_KEPT) return
    who = new Map()
    p.stateAsks.set(at, who)
  }
  who.set(from, parts)
}

/**
 * Starts the vote on a complete, self-consistent snapshot: true when it may
 * be imported at once, 'mismatch' when its partitions' digests do not add up
 * to its state digest, false while the vote runs.
 */
export function beginPartVote (s: PeerState, f: SnapshotFetch): boolean | 'mismatch' {
  const p = s.parts as PartState
  const cursor = f.cursor as Cursor
  if (cursor.state === undefined) return true
  const sum = [0, 0]
  for (const [, a, b] of cursor.parts ?? []) { sum[0] = ((sum[0] as number) + a) >>> 0; sum[1] = ((sum[1] as number) + b) >>> 0 }
  if (sum[0] !== cursor.state[0] || sum[1] !== cursor.state[1]) return 'mismatch'
  const claimed = new Map((cursor.parts ?? []).map(([q, a, b]) => [q, [a, b] as const]))
  const role = roleHolding(s)
  p.vote = { id: f.id, at: cursor.frontier, tallies: new Map() }
  for (const q of cursor.holding ?? []) {
    if (!role.has(q)) continue
    const replicas = (p.placement.replicas[q] ?? []).filter(v => v !== s.id)
    const needed = Math.min(Math.floor((p.placement.replicas[q] ?? []).length / 2) + 1, replicas.length)
    p.vote.tallies.set(q, { replicas, needed, lanes: claimed.get(q) ?? [0, 0], agree: new Set(replicas.includes(f.source) ? [f.source] : []), against: new Set(), silent: new Set() })
  }
  if (verdict(s, f) === 'import') return true
  f.vote = { count: -1, agree: new Set(), against: new Set(), silent: new Set() }
  askPartVoters(s, f)
  return false
}

/** Asks each partition's replicas that have not answered (again, on a retry). */
export function askPartVoters (s: PeerState, f: SnapshotFetch): void {
  const v = s.parts?.vote
  if (v === undefined || v.id !== f.id) return
  f.askedAt = s.now
  const byReplica = new Map<string, number[]>()
  for (const [q, t] of v.tallies) {
    for (const r of t.replicas) {
      if (t.agree.has(r) || t.against.has(r) || t.silent.has(r)) continue
      byReplica.set(r, [...(byReplica.get(r) ?? []), q])
    }
  }
  for (const [r, parts] of byReplica) send(s, r, { t: 'pst-req', at: v.at, parts })
}

/** A replica's answer: the verdict once every partition is vouched for ('import') or one can no longer be ('refuse'). */
export function tallyPartVote (s: PeerState, from: string, at: Timestamp, states: ReadonlyArray<readonly number[]>): 'import' | 'refuse' | undefined {
  const f = s.history.fetch
  const v = s.parts?.vote
  if (f === undefined || v === undefined || v.id !== f.id || at !== v.at || from === f.source) return undefined
  for (const [q, a, b] of states) {
    const t = v.tallies.get(q as number)
    if (t === undefined || !t.replicas.includes(from)) continue
    t.silent.delete(from)
    t.against.delete(from)
    if (a === undefined || b === undefined) t.silent.add(from)
    else if (a === t.lanes[0] && b === t.lanes[1]) t.agree.add(from)
    else t.against.add(from)
  }
  return verdict(s, f)
}

function verdict (s: PeerState, f: SnapshotFetch): 'import' | 'refuse' | undefined {
  const v = s.parts?.vote
  if (v === undefined) return undefined
  let open = false
  for (const [q, t] of v.tallies) {
    if (t.agree.size >= t.needed) continue
    const undecided = t.replicas.filter(x => !t.agree.has(x) && !t.against.has(x) && !t.silent.has(x)).length
    if (t.against.size > 0 && t.agree.size + undecided < t.needed) return 'refuse'
    if (undecided > 0) { open = true; continue }
    if (t.against.size > 0) return 'refuse'
    // Everyone answered and no one disagrees, but too few could vouch: the source's word is taken (as state-votes.ts does).
    count(s, 'snapshot-unvouched')
    log(s, 'snapshot-unvouched', { from: f.source, partition: q, silent: [...t.silent] })
    t.needed = 0
  }
  return open ? undefined : 'import'
}
