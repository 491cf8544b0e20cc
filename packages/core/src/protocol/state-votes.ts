import type { Cursor } from '../types.js'
import { count, log, send } from './emit.js'
import type { SnapshotFetch } from './history-state.js'
import { roleOf, type PeerState } from './state.js'
import { holdingTag } from './partitions.js'

/**
 * A snapshot is vouched for by a majority (issue 20). Its source's own
 * digests prove only that nothing changed on the way; a source that holds a
 * wrong state (or forges one) would pass them. So before importing, the
 * requester asks the other current voters for their StateDigest after the
 * cursor's `count`-th thunk (every correct replica evaluated the same thunks
 * in the same order, so it is the same everywhere) and imports only once a
 * majority of the current voters, its source included, report the cursor's.
 *
 * Every replica keeps the state digest after each of its last STATE_TRAIL
 * evaluated thunks (two numbers each); a voter asked for a count it has not
 * reached answers when it gets there.
 */

/** Evaluated counts whose state digest a replica keeps to vouch for a snapshot taken there. */
const STATE_TRAIL = 8192
/** Most counts a voter remembers being asked for before reaching them. */
const ASKS_KEPT = 64

/** After a run from `baseCount`: the state digest after each of its thunks (`states`: two lanes each), and the requests waiting for them. */
export function recordStates (s: PeerState, baseCount: number, states: readonly number[] | undefined): void {
  if (states === undefined) return
  const trail = s.history.stateTrail
  for (let i = 0; i + 1 < states.length; i += 2) trail.set(baseCount + i / 2 + 1, [states[i] as number, states[i + 1] as number])
  while (trail.size > STATE_TRAIL) trail.delete(trail.keys().next().value as number)
  for (const [at, who] of s.history.stateAsks) {
    if (at > s.evaluatedCount) continue
    s.history.stateAsks.delete(at)
    for (const to of who) answer(s, to, at)
  }
}

/** The trail is this replica's own evaluation: a snapshot import (or a heal) starts it afresh, at the cursor it installed. */
export function restartStates (s: PeerState, cursor: Cursor): void {
  s.history.stateTrail.clear()
  if (cursor.state !== undefined) s.history.stateTrail.set(cursor.count, cursor.state)
}

function answer (s: PeerState, to: string, at: number): void {
  const lanes = s.history.heal === undefined ? s.history.stateTrail.get(at) : undefined
  send(s, to, lanes === undefined ? { t: 'st-rep', count: at } : { t: 'st-rep', count: at, state: lanes })
}

/** A replica checking a snapshot asks this voter for its state digest at `at`: now, or once evaluated that far. */
export function onStateRequest (s: PeerState, from: string, at: number, h?: string): void {
  if (roleOf(s) !== 'voter') return
  // A replica of other partitions cannot vouch for this state.
  if (h !== holdingTag(s)) { send(s, from, { t: 'st-rep', count: at }); return }
  // Evaluated that far, or never getting there by itself (it heals, or waits for a snapshot of its own): it says so now.
  if (at <= s.evaluatedCount || s.history.heal !== undefined || s.history.fetch !== undefined) {
    answer(s, from, at)
    return
  }
  const asks = s.history.stateAsks
  let who = asks.get(at)
  if (who === undefined) {
    if (asks.size >= ASKS_KEPT) return
    who = new Set()
    asks.set(at, who)
  }
  who.add(from)
}

/**
 * How many current voters must vouch: a majority of them, or all the others
 * when this replica is a voter and they are fewer (a voter that needs a
 * snapshot cannot vouch for it; with one other voter, its source's word is
 * all there is).
 */
function needed (s: PeerState): number {
  return Math.min(s.current.majority, s.current.voters.filter(v => v !== s.id).length)
}

/** Starts the vote on a complete, self-consistent snapshot; true when no other voter's word is needed. */
export function beginVote (s: PeerState, f: SnapshotFetch): boolean {
  const cursor = f.cursor as Cursor
  if (cursor.state === undefined) return true
  const agree = new Set(s.current.voters.includes(f.source) ? [f.source] : [])
  if (agree.size >= needed(s)) return true
  f.vote = { count: cursor.count, agree, against: new Set(), silent: new Set() }
  askVoters(s, f)
  return false
}

/** Asks the current voters that have not answered (again, on a retry). */
export function askVoters (s: PeerState, f: SnapshotFetch): void {
  const v = f.vote
  if (v === undefined) return
  f.askedAt = s.now
  for (const voter of s.current.voters) {
    if (voter === s.id || v.agree.has(voter) || v.against.has(voter) || v.silent.has(voter)) continue
    const h = holdingTag(s, (f.cursor as Cursor).holding)
    send(s, voter, { t: 'st-req', count: v.count, ...(h === undefined ? {} : { h }) })
  }
}

/**
 * A voter's answer: the verdict once a majority vouched ('import') or can
 * no longer ('refuse'). When every other voter answered and none disagrees
 * but too few could vouch (they heal, or fell behind a horizon themselves),
 * the source's word is taken: with crash faults it is right, and waiting for
 * a vouch that no one can give would stall every broken voter for good (each
 * one needs the others to recover first). A voter that does not answer at
 * all gets the snapshot refused when the requester stops waiting, and another
 * one fetched.
 */
export function tallyVote (s: PeerState, from: string, at: number, state: readonly [number, number] | undefined): 'import' | 'refuse' | undefined {
  const f = s.history.fetch
  const v = f?.vote
  if (f === undefined || v === undefined || at !== v.count || !s.current.voters.includes(from) || from === f.source) return undefined
  const mine = (f.cursor as Cursor).state as readonly [number, number]
  v.silent.delete(from)
  v.against.delete(from)
  if (state === undefined) v.silent.add(from)
  else if (state[0] === mine[0] && state[1] === mine[1]) v.agree.add(from)
  else v.against.add(from)
  if (v.agree.size >= needed(s)) {
    log(s, 'snapshot-vouched', { from: f.source, count: at, by: [...v.agree] })
    return 'import'
  }
  const undecided = s.current.voters.filter(x => x !== s.id && !v.agree.has(x) && !v.against.has(x) && !v.silent.has(x)).length
  if (undecided > 0) {
    // Everyone who could still agree is not enough.
    return v.agree.size + undecided < needed(s) && v.against.size > 0 ? 'refuse' : undefined
  }
  if (v.against.size > 0) return 'refuse'
  count(s, 'snapshot-unvouched')
  log(s, 'snapshot-unvouched', { from: f.source, count: at, silent: [...v.silent] })
  return 'import'
}
