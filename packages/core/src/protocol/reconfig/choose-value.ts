import { maxTimestamp, type Timestamp } from '../../timestamp.js'
import type { Ballot, Batch, EpochChange, EpochReport, Revoked, StreamCut, Thunk } from '../../types.js'

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
 * must be kept). Otherwise a new one: every batch of the old epoch that
 * some promiser holds is kept, every other one is aborted, whole. A batch
 * that was on a majority (the only kind any of whose thunks can have been
 * evaluated or answered) is held by at least one member of any majority, so
 * it is never aborted. A replica persists and acks a batch as one record,
 * so no replica holds part of one: cutting inside a batch is never needed.
 */
export function chooseValue (
  promises: ReadonlyMap<string, PromiseInfo>,
  oldVoters: readonly string[],
  newEpoch: number,
  newVoters: readonly string[],
  revoked: (floor: Timestamp) => readonly Revoked[] = () => []
): EpochChange {
  let best: { ballot: Ballot, value: EpochChange } | undefined
  for (const p of promises.values()) {
    if (p.accepted !== undefined && (best === undefined || compareBallots(p.accepted.ballot, best.ballot) > 0)) best = p.accepted
  }
  if (best !== undefined) return best.value
  const haveMax = new Map<string, number>()
  const held = new Map<string, Map<number, Batch>>()
  let floor = '' as Timestamp
  for (const p of promises.values()) {
    floor = floor === '' ? p.report.top : maxTimestamp(floor, p.report.top)
    for (const h of p.report.have) haveMax.set(h.coordinator, Math.max(haveMax.get(h.coordinator) ?? 0, h.seq))
    for (const b of p.report.held) {
      let m = held.get(b.coordinator)
      if (m === undefined) { m = new Map(); held.set(b.coordinator, m) }
      m.set(b.seq, b)
    }
  }
  const cuts: StreamCut[] = []
  const batches: Batch[] = []
  for (const c of oldVoters) {
    const have = haveMax.get(c) ?? 0
    const bodies = held.get(c) ?? new Map<number, Batch>()
    let end = have
    for (const seq of bodies.keys()) if (seq > end) end = seq
    const skip: number[] = []
    for (let seq = have + 1; seq <= end; seq++) if (!bodies.has(seq)) skip.push(seq)
    cuts.push({ coordinator: c, end, skip })
    for (const b of [...bodies.values()].sort((x, y) => x.seq - y.seq)) {
      if (b.seq > end) continue
      batches.push(b)
      floor = maxTimestamp(floor, (b.thunks[b.thunks.length - 1] as Thunk).ts)
    }
  }
  // Revocations hold from the floor on: every thunk kept from the old epoch lies at or below it, every new one above.
  const r = revoked(floor)
  return { epoch: newEpoch, voters: [...newVoters], cuts, floor, batches, ...(r.length === 0 ? {} : { revoked: r }) }
}

/** Whether the epoch change keeps batch `seq` of `coordinator`'s old-epoch sequence. */
export function keeps (cut: StreamCut | undefined, seq: number): boolean {
  return cut !== undefined && seq <= cut.end && !cut.skip.includes(seq)
}
