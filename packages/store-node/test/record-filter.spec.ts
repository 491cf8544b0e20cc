import { describe, expect, it } from 'vitest'
import { RecordFilter } from '../src/record-filter.js'

describe('RecordFilter', () => {
  it('never misses an added id, and rarely claims one it never saw', () => {
    const f = new RecordFilter()
    const added = Array.from({ length: 50_000 }, (_, i) => `client-${i % 64}-${i}`)
    for (const id of added) f.add(id)
    expect(added.filter(id => !f.has(id))).toEqual([])
    // Ids of the same shape (what a relay sees): at this load the expected false-positive rate is about 1e-6.
    let claimed = 0
    for (let i = 0; i < 50_000; i++) if (f.has(`client-${i % 64}-${i + 1_000_000}`)) claimed++
    expect(claimed).toBeLessThan(10)
    expect(new RecordFilter().has('anything')).toBe(false)
  })
})
