import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { chooseValue, keeps, type EpochChange, type EpochReport } from '../src/index.js'
import { arbBatch, arbTimestamp } from '../test-support/message-arbitraries.js'

const voters = ['a', 'b', 'c', 'd', 'e']

/** One promiser's report over coordinators a..e: a contiguous prefix of batches per coordinator and some batches held beyond it. */
const arbReport: fc.Arbitrary<EpochReport> = fc.record({
  have: fc.tuple(...voters.map(() => fc.nat(6))).map(ns => ns.map((seq, i) => ({ coordinator: voters[i] as string, seq }))),
  held: fc.array(fc.tuple(arbBatch, fc.constantFrom(...voters), fc.integer({ min: 1, max: 12 })).map(([b, c, seq]) => ({ epoch: 0, coordinator: c, seq, thunks: b.thunks.map(t => ({ ...t, coordinator: c, seq, epoch: 0 })) })), { maxLength: 6 }),
  top: arbTimestamp
})

const arbAccepted = fc.option(fc.record({ ballot: fc.record({ n: fc.integer({ min: 1, max: 9 }), by: fc.constantFrom(...voters) }), value: fc.constant(null) }), { nil: undefined })

describe('chooseValue', () => {
  it('with no accepted value: keeps every batch some promiser holds, whole, aborts only seqs no promiser has, floors above everything reported', () => {
    fc.assert(fc.property(fc.array(arbReport, { minLength: 3, maxLength: 3 }), reports => {
      const promises = new Map(reports.map((report, i) => [voters[i] as string, { report }]))
      const v = chooseValue(promises, voters, 1, ['a', 'b'])
      expect(v).toMatchObject({ epoch: 1, voters: ['a', 'b'] })
      for (const r of reports) {
        expect(v.floor >= r.top).toBe(true)
        for (const h of r.have) {
          const cut = v.cuts.find(c => c.coordinator === h.coordinator)
          // A contiguous prefix some promiser persisted may have been on a majority: all of it is kept.
          for (let seq = 1; seq <= h.seq; seq++) expect(keeps(cut, seq)).toBe(true)
        }
        for (const b of r.held) {
          expect(keeps(v.cuts.find(c => c.coordinator === b.coordinator), b.seq)).toBe(true)
          // Carried whole: every thunk of a kept batch travels with the decision.
          const kept = v.batches.find(k => k.coordinator === b.coordinator && k.seq === b.seq)
          expect(kept?.thunks.length).toBeGreaterThan(0)
        }
      }
      for (const b of v.batches) {
        expect(keeps(v.cuts.find(c => c.coordinator === b.coordinator), b.seq)).toBe(true)
        for (const t of b.thunks) expect(v.floor >= t.ts).toBe(true)
      }
      // One batch per (coordinator, seq).
      expect(new Set(v.batches.map(b => `${b.coordinator}/${b.seq}`)).size).toBe(v.batches.length)
      for (const cut of v.cuts) {
        for (const seq of cut.skip) {
          // Aborted: beyond every promiser's prefix and held by none of them.
          for (const r of reports) {
            expect(seq > (r.have.find(h => h.coordinator === cut.coordinator)?.seq ?? 0)).toBe(true)
            expect(r.held.some(b => b.coordinator === cut.coordinator && b.seq === seq)).toBe(false)
          }
        }
      }
    }), { numRuns: 1000 })
  })

  it('with accepted values: proposes the one with the highest ballot, unchanged', () => {
    fc.assert(fc.property(fc.array(fc.tuple(arbReport, arbAccepted), { minLength: 3, maxLength: 3 }), fc.array(arbTimestamp, { minLength: 3, maxLength: 3 }), (promisers, floors) => {
      const values = floors.map((floor, i): EpochChange => ({ epoch: 1, voters: [voters[i] as string], cuts: [], floor, batches: [] }))
      const promises = new Map(promisers.map(([report, accepted], i) => [voters[i] as string, { report, accepted: accepted === undefined ? undefined : { ballot: accepted.ballot, value: values[i] as EpochChange } }]))
      const acceptedOnes = [...promises.values()].flatMap(p => p.accepted === undefined ? [] : [p.accepted])
      const v = chooseValue(promises, voters, 1, ['a'])
      if (acceptedOnes.length === 0) return
      const best = acceptedOnes.reduce((x, y) => (y.ballot.n > x.ballot.n || (y.ballot.n === x.ballot.n && y.ballot.by > x.ballot.by)) ? y : x)
      expect(v).toBe(best.value)
    }), { numRuns: 1000 })
  })
})
