import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TS_ZERO, WatermarkTable, type WatermarkEntry } from '../src/index.js'
import { arbTimestamp } from '../test-support/message-arbitraries.js'

const voters = ['a', 'b', 'c']
const arbEntry = fc.record({ voter: fc.constantFrom(...voters, 'stranger'), epoch: fc.constantFrom(3, 3, 3, 2), svw: arbTimestamp, count: fc.nat(20) })

/** What the table must say after `entries`: per voter of epoch 3 its highest (svw, count); V the least of those, once all three spoke. */
function expected (entries: readonly WatermarkEntry[]): string {
  const best = new Map<string, WatermarkEntry>()
  for (const e of entries) {
    if (e.epoch !== 3 || !voters.includes(e.voter)) continue
    const old = best.get(e.voter)
    if (old === undefined || e.svw > old.svw || (e.svw === old.svw && e.count > old.count)) best.set(e.voter, e)
  }
  if (best.size < voters.length) return TS_ZERO
  return [...best.values()].map(e => e.svw).sort()[0] as string
}

describe('WatermarkTable', () => {
  it('is the minimum over the voters of each one\'s highest entry, whatever order entries arrive in, duplicated or stale', () => {
    fc.assert(fc.property(fc.array(arbEntry, { maxLength: 30 }), fc.nat(), (entries, seed) => {
      const a = new WatermarkTable(voters, 3)
      for (const e of entries) a.merge(e)
      // The same entries in another order, each twice.
      const shuffled = [...entries, ...entries].map((e, i) => ({ e, k: (i * 7919 + seed) % 1009 })).sort((x, y) => x.k - y.k).map(x => x.e)
      const b = new WatermarkTable(voters, 3)
      for (const e of shuffled) b.merge(e)
      expect(a.value).toBe(expected(entries))
      expect(b.value).toBe(a.value)
    }), { numRuns: 2000 })
  })

  it('never goes down, and merge says true exactly when it raised a voter\'s entry', () => {
    fc.assert(fc.property(fc.array(arbEntry, { maxLength: 30 }), entries => {
      const t = new WatermarkTable(voters, 3)
      let last = t.value
      for (const e of entries) {
        const before = t.get(e.voter)
        const raised = t.merge(e)
        const after = t.get(e.voter)
        expect(raised).toBe(after !== before)
        expect(t.value >= last).toBe(true)
        last = t.value
      }
    }), { numRuns: 2000 })
  })
})
