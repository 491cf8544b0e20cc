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
  revoked: (floor: Timestamp) => readonly Revoked[] = () => [],
  partial = false
): EpochChange {
  let best: { ballot: Ballot, value: EpochChange } | undefined
  for (const p of promises.values()) {
    if (p.accepted !== undefined && (best === undefined || compareBallots(p.accepted.ballot, best.ballot) > 0)) best = p.accepted
  }
  if (best !== undefined) return best.value
  if (partial) {
    const kept = keepPartial(promises, oldVoters)
    const r = revoked(kept.floor)
    return { epoch: newEpoch, voters: [...newVoters], cuts: kept.cuts, floor: kept.floor, batches: kept.batches, ...(r.length === 0 ? {} : { revoked: r }) }
  }
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

/**
 * The cut of a partially replicated epoch (partial.ts). Promisers hold parts
 * of batches, and the promise quorum has a majority of every replica set's
 * storers. A batch is kept when some promiser knows it durable (its
 * coordinator's entry counted it, or evaluation passed it: `report.durable`),
 * or when the parts reported make it whole again (then it is carried whole).
 * Any other batch was never durable: some set it touches has no promiser
 * holding its part, and those promisers, sealed, ack nothing more, so that set
 * can never reach a majority for it; none of its thunks was evaluated
 * anywhere, and it is cut.
 */
export function keepPartial (promises: ReadonlyMap<string, PromiseInfo>, oldVoters: readonly string[]): { cuts: StreamCut[], batches: Batch[], floor: Timestamp } {
  const durable = new Map<string, number>()
  const parts = new Map<string, Map<number, { n: number, readonly thunks: Map<number, Thunk>, whole?: Batch }>>()
  let floor = '' as Timestamp
  for (const p of promises.values()) {
    floor = floor === '' ? p.report.top : maxTimestamp(floor, p.report.top)
    for (const d of p.report.durable ?? []) durable.set(d.coordinator, Math.max(durable.get(d.coordinator) ?? 0, d.seq))
    for (const b of p.report.held) {
      let m = parts.get(b.coordinator)
      if (m === undefined) { m = new Map(); parts.set(b.coordinator, m) }
      let got = m.get(b.seq)
      if (got === undefined) { got = { n: b.n ?? b.thunks.length, thunks: new Map() }; m.set(b.seq, got) }
      if (b.projected !== true) got.whole = b
      for (const t of b.thunks) got.thunks.set(t.index, t)
    }
  }
  const cuts: StreamCut[] = []
  const batches: Batch[] = []
  for (const c of oldVoters) {
    const known = durable.get(c) ?? 0
    const whole: Batch[] = []
    for (const [seq, got] of parts.get(c) ?? []) {
      if (got.whole !== undefined) whole.push(got.whole)
      else if (got.thunks.size >= got.n) {
        const thunks = [...got.thunks.values()].sort((x, y) => x.index - y.index)
        const first = thunks[0] as Thunk
        whole.push({ epoch: first.epoch, coordinator: c, seq, thunks })
      }
    }
    whole.sort((x, y) => x.seq - y.seq)
    let end = known
    for (const b of whole) if (b.seq > end) end = b.seq
    const complete = new Set(whole.map(b => b.seq))
    const skip: number[] = []
    for (let seq = known + 1; seq <= end; seq++) if (!complete.has(seq)) skip.push(seq)
    cuts.push({ coordinator: c, end, skip })
    for (const b of whole) {
      batches.push(b)
      floor = maxTimestamp(floor, (b.thunks[b.thunks.length - 1] as Thunk).ts)
    }
  }
  return { cuts, batches, floor }
}
