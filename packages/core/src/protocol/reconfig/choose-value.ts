import { maxTimestamp, type Timestamp } from '../../timestamp.js'
import type { Ballot, EpochChange, EpochReport, StreamCut, Thunk } from '../../types.js'

/**
 * Epoch change (DESIGN.md §8) as single-decree Paxos among the old epoch's
 * voters. These are the pure parts: ballot order and the value a proposer
 * builds from a majority of promises. The peer runs the message flow.
 */

export function compareBallots (a: Ballot, b: Ballot): number {
  if (a.n !== b.n) return a.n < b.n ? -1 : 1
  return a.by < b.by ? -1 : a.by > b.by ? 1 : 0
}

export interface PromiseInfo {
  readonly accepted?: { readonly ballot: Ballot, readonly value: EpochChange } | undefined
  readonly report: EpochReport
}

/**
 * The value to propose after a majority promised. If any of them accepted a
 * value, the one with the highest ballot (it may have been chosen, so it
 * must be kept). Otherwise a new one: every thunk of the old epoch that
 * some promiser holds is kept, every other one is aborted. A thunk that was
 * on a majority (the only kind that can have been evaluated or answered) is
 * held by at least one member of any majority, so it is never aborted.
 */
export function chooseValue (
  promises: ReadonlyMap<string, PromiseInfo>,
  oldVoters: readonly string[],
  newEpoch: number,
  newVoters: readonly string[]
): EpochChange {
  let best: { ballot: Ballot, value: EpochChange } | undefined
  for (const p of promises.values()) {
    if (p.accepted !== undefined && (best === undefined || compareBallots(p.accepted.ballot, best.ballot) > 0)) best = p.accepted
  }
  if (best !== undefined) return best.value
  const haveMax = new Map<string, number>()
  const held = new Map<string, Map<number, Thunk>>()
  let floor = '' as Timestamp
  for (const p of promises.values()) {
    floor = floor === '' ? p.report.top : maxTimestamp(floor, p.report.top)
    for (const h of p.report.have) haveMax.set(h.coordinator, Math.max(haveMax.get(h.coordinator) ?? 0, h.seq))
    for (const t of p.report.held) {
      let m = held.get(t.coordinator)
      if (m === undefined) { m = new Map(); held.set(t.coordinator, m) }
      m.set(t.seq, t)
    }
  }
  const cuts: StreamCut[] = []
  const thunks: Thunk[] = []
  for (const c of oldVoters) {
    const have = haveMax.get(c) ?? 0
    const bodies = held.get(c) ?? new Map<number, Thunk>()
    let end = have
    for (const seq of bodies.keys()) if (seq > end) end = seq
    const skip: number[] = []
    for (let seq = have + 1; seq <= end; seq++) if (!bodies.has(seq)) skip.push(seq)
    cuts.push({ coordinator: c, end, skip })
    for (const t of [...bodies.values()].sort((a, b) => a.seq - b.seq)) {
      if (t.seq > end) continue
      thunks.push(t)
      floor = maxTimestamp(floor, t.ts)
    }
  }
  return { epoch: newEpoch, voters: [...newVoters], cuts, floor, thunks }
}

/** Whether the epoch change keeps thunk `seq` of `coordinator`'s old-epoch sequence. */
export function keeps (cut: StreamCut | undefined, seq: number): boolean {
  return cut !== undefined && seq <= cut.end && !cut.skip.includes(seq)
}
