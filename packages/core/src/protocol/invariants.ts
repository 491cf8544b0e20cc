import { TS_ZERO } from '../timestamp.js'
import type { Thunk } from '../types.js'
import { isSealed, roleOf, type PeerState } from './state.js'

/**
 * What must hold of a peer's state between any two steps. The simulator
 * checks it after every step of every peer, and tests with
 * `checkInvariants`; an empty list means all hold.
 */
export function invariants (s: PeerState): string[] {
  const broken: string[] = []
  const fail = (what: string): void => { broken.push(what) }
  if (s.effects.length > 0) fail('effects left over between steps')
  if ((s.phase === 'failed') !== (s.failure !== undefined) && s.phase !== 'closed') fail(`phase ${s.phase} with failure ${String(s.failure)}`)
  if (s.epochs.get(s.current.epoch) !== s.current) fail('the current epoch is not in the epochs map')
  if (s.evaluatingEpoch > s.current.epoch) fail('evaluating an epoch after the current one')
  for (let e = s.evaluatingEpoch; e <= s.current.epoch; e++) {
    const record = s.epochs.get(e)
    if (record === undefined) fail(`epoch ${e} between the evaluated and the current one is missing`)
    else if (e < s.current.epoch && record.floor === undefined) fail(`epoch ${e} is not current but has no decided floor`)
  }
  for (const record of s.epochs.values()) {
    if (record.epoch < s.evaluatingEpoch) fail(`epoch ${record.epoch} is kept after it was evaluated`)
    for (const [c, stream] of record.streams) {
      const at = `epoch ${record.epoch} stream ${c}`
      if (stream.have < stream.evalNext - 1) fail(`${at}: have ${stream.have} below evalNext ${stream.evalNext} - 1`)
      // Part of a batch evaluated: the rest of it is held, or (a snapshot put evaluation there) it is still to fetch.
      const inside = stream.held.get(stream.evalNext)
      if (stream.evalIndex > 0 && (inside === undefined ? stream.have >= stream.evalNext : inside.projected !== true && (inside.thunks.at(-1)?.index ?? -1) < stream.evalIndex)) fail(`${at}: evaluation inside batch ${stream.evalNext} at ${stream.evalIndex}, which is not held that far`)
      for (const seq of stream.held.keys()) {
        // A run handed to the applier stays held until it is settled.
        if (seq < stream.evalNext && s.evaluation !== 'running') fail(`${at}: holds evaluated seq ${seq}`)
        if (stream.receiving.has(seq)) fail(`${at}: seq ${seq} both held and being persisted`)
        if (record.floor !== undefined && (seq > (stream.end ?? 0) || stream.skip?.has(seq) === true)) fail(`${at}: holds seq ${seq} its epoch's cut aborted`)
      }
    }
  }
  const coordinator = s.current.coordinator
  const own = s.current.wm.get(s.id)
  let previous = 0
  for (const [seq, e] of coordinator.inflight) {
    if (seq <= previous) fail(`in-flight seqs out of mint order at ${seq}`)
    previous = seq
    if (seq >= coordinator.nextSeq) fail(`in-flight seq ${seq} not below nextSeq ${coordinator.nextSeq}`)
    if (e.batch.epoch !== s.current.epoch || e.batch.coordinator !== s.id || e.batch.seq !== seq) fail(`in-flight seq ${seq} is not this voter's batch ${seq} of the current epoch`)
    // The promise: nothing this voter still has in flight lies below the entry it published.
    const first = (e.batch.thunks[0] as Thunk).ts
    if (own !== undefined && first < own.svw) fail(`in-flight ${first} below this voter's own watermark entry ${own.svw}`)
  }
  for (const o of coordinator.open) if (own !== undefined && o.ts < own.svw && !isSealed(s)) fail(`open thunk ${o.ts} below this voter's own watermark entry ${own.svw}`)
  if ((coordinator.inflight.size > 0 || coordinator.open.length > 0) && roleOf(s) !== 'voter') fail('an observer has batches in flight or open')
  if (isSealed(s) && roleOf(s) !== 'voter') fail('sealed but not a voter')
  if (s.evaluatedCount > 0 && s.frontier <= s.lastEvaluated) fail(`frontier ${s.frontier} not above the last evaluated ${s.lastEvaluated}`)
  // (A partitioned replica's last is the last thunk it took, evaluated or only forwarded from.)
  if (s.evaluatedCount === 0 && s.lastEvaluated !== TS_ZERO && s.parts === undefined) fail('a last evaluated timestamp with nothing evaluated')
  for (const [id, list] of s.waiters) if (list.length === 0) fail(`an empty waiter list for ${id}`)
  for (const op of s.reads.values()) {
    if (op.phase !== 'requesting' && op.phase !== 'held' && op.ts === undefined) fail(`read ${op.id} ${op.phase} without a timestamp`)
  }
  return broken
}
