import { describe, expect, it } from 'vitest'
import { Placement, chooseValue, coveredBy, keeps, projectBatch, storersOf, type Batch, type EpochReport, type PartitionSpec, type Thunk, type Timestamp } from '../src/index.js'
import { projectGap } from '../src/protocol/feeds.js'
import { newPartState } from '../src/protocol/partitions.js'
import type { PeerState } from '../src/protocol/state.js'

// Six genesis voters in two replica sets: a, c, e hold partitions 0 and 2; b, d, f hold 1 and 3.
const spec: PartitionSpec = { count: 4, replicas: 3, partial: true, assign: { p0: 0, p1: 1, p2: 2, p3: 3 } }
const voters = ['a', 'b', 'c', 'd', 'e', 'f']
const placement = new Placement(spec, voters)
const ts = (n: number): Timestamp => n.toString(16).padStart(12, '0') + '0'.repeat(24) as Timestamp

/** A batch of `coordinator` whose thunk `i` writes the keys named in `writes[i]` (keys `pN/x` are in partition N). */
function batch (coordinator: string, seq: number, writes: ReadonlyArray<readonly string[]>): Batch {
  const thunks: Thunk[] = writes.map((w, index) => ({ ts: ts(seq * 100 + index + 1), epoch: 0, coordinator, seq, index, procedure: 'put', hash: 'h', args: null, reads: [...w], writes: [...w], clientTxnId: `${coordinator}-${seq}-${index}`, firstAt: 0 }))
  return { epoch: 0, coordinator, seq, thunks }
}

const setA = placement.setParts[0] as ReadonlySet<number>
const setB = placement.setParts[1] as ReadonlySet<number>
const report = (held: readonly Batch[], durable: ReadonlyArray<readonly [string, number]> = []): EpochReport => ({ have: [], held, top: ts(1), durable: durable.map(([coordinator, seq]) => ({ coordinator, seq })) })

describe('partial replication: the epoch change', () => {
  it('the sets and their storers: placed voters by set, a voter placed on none stores every set', () => {
    expect(placement.sets).toEqual([['a', 'c', 'e'], ['b', 'd', 'f']])
    expect(storersOf(placement, voters)).toEqual([['a', 'c', 'e'], ['b', 'd', 'f']])
    expect(storersOf(placement, ['a', 'b', 'c', 'd', 'g'])).toEqual([['a', 'c', 'g'], ['b', 'd', 'g']])
  })

  it('a promise quorum needs a majority of every set\'s storers, not only of the voters', () => {
    const storers = storersOf(placement, voters)
    // Four of six is a majority of the voters, but only one of b, d, f: a batch durable on d and f alone would be missed.
    expect(coveredBy(storers, new Set(['a', 'c', 'e', 'b']))).toBe(false)
    expect(coveredBy(storers, new Set(['a', 'c', 'b', 'd']))).toBe(true)
    expect(coveredBy(storers, new Set(['a', 'b']))).toBe(false)
  })

  it('a batch durable in one set only, reported by that set\'s promiser, is kept and carried whole', () => {
    const x = batch('a', 1, [['p1/x'], ['p3/y']])
    const partB = projectBatch(x, setB, spec, 1) as Batch
    expect(partB).toBe(x) // every thunk is set B's: the part is the batch
    const promises = new Map([['a', { report: report([x]) }], ['c', { report: report([]) }], ['b', { report: report([]) }], ['d', { report: report([partB]) }]])
    const v = chooseValue(promises, voters, 1, voters, () => [], true)
    expect(keeps(v.cuts.find(c => c.coordinator === 'a'), 1)).toBe(true)
    expect(v.batches.map(b => b.thunks.length)).toEqual([2])
  })

  it('a batch across both sets is put back together from the two sets\' parts', () => {
    const x = batch('b', 1, [['p0/x'], ['p1/y'], ['p2/z', 'p3/w']])
    const partA = projectBatch(x, setA, spec, 0) as Batch
    const partB = projectBatch(x, setB, spec, 1) as Batch
    expect(partA.thunks.map(t => t.index)).toEqual([0, 2])
    expect(partB.thunks.map(t => t.index)).toEqual([1, 2])
    expect(partA.n).toBe(3)
    const promises = new Map([['a', { report: report([partA]) }], ['c', { report: report([]) }], ['d', { report: report([partB]) }], ['f', { report: report([]) }]])
    const v = chooseValue(promises, voters, 1, voters, () => [], true)
    const kept = v.batches.find(b => b.coordinator === 'b' && b.seq === 1)
    expect(kept?.projected).toBeUndefined()
    expect(kept?.thunks).toEqual(x.thunks)
    expect(v.floor >= (x.thunks[2] as Thunk).ts).toBe(true)
  })

  it('a batch missing one set\'s part is cut, unless a promiser knows it durable', () => {
    const x = batch('b', 2, [['p0/x'], ['p1/y']])
    const partA = projectBatch(x, setA, spec, 0) as Batch
    const promises = new Map([['a', { report: report([partA]) }], ['c', { report: report([]) }], ['d', { report: report([]) }], ['f', { report: report([]) }]])
    const cut = chooseValue(promises, voters, 1, voters, () => [], true)
    expect(keeps(cut.cuts.find(c => c.coordinator === 'b'), 2)).toBe(false)
    expect(cut.batches).toEqual([])
    // Its coordinator's entry counted it (it was durable): kept, and fetched from the replicas that hold it.
    promises.set('f', { report: report([], [['b', 2]]) })
    const kept = chooseValue(promises, voters, 1, voters, () => [], true)
    const c = kept.cuts.find(c => c.coordinator === 'b')
    expect(keeps(c, 1)).toBe(true)
    expect(keeps(c, 2)).toBe(true)
    expect(c?.end).toBe(2)
  })

  it('the whole-replication rule would lose that batch: it keeps what any promiser holds, part or not', () => {
    // The planted mutant: treat a part as the batch. The union rule cuts the batch above; the old rule keeps half of it.
    const x = batch('b', 2, [['p0/x'], ['p1/y']])
    const partA = projectBatch(x, setA, spec, 0) as Batch
    const promises = new Map([['a', { report: report([partA]) }], ['c', { report: report([]) }], ['d', { report: report([]) }], ['f', { report: report([]) }]])
    const whole = chooseValue(promises, voters, 1, voters, () => [], false)
    expect(whole.batches[0]?.thunks.length).toBe(1)
  })

  it('a gap answer speaks only for what it holds whole or as a part covering the asker\'s partitions, also once its epoch is evaluated and gone', () => {
    // A voter of set B whose record of epoch 0 is gone answers an asker of set A (the simulator's seed 816 before the fix).
    const s = { parts: newPartState(spec, undefined, voters), epochs: new Map() } as unknown as PeerState
    const b1 = batch('v', 1, [['p0/x']])
    const b2 = batch('v', 2, [['p1/y']])
    const b3 = projectBatch(batch('v', 3, [['p1/y'], ['p0/x']]), setB, spec, 1) as Batch
    const b4 = batch('v', 4, [['p2/w']])
    expect(b3.thunks.map(t => t.index)).toEqual([0])
    const out = projectGap(s, [b1, b2, b3, b4], setA, { coordinator: 'v', epoch: 0, from: 1 }, 0)
    // Seq 2 held nothing for set A (it is whole here); seq 3 is set B's part, which cannot say what set A's was.
    expect(out.span).toEqual({ coordinator: 'v', epoch: 0, from: 1, to: 2 })
    expect(out.batches.map(b => b.seq)).toEqual([1, 4])
  })
})

