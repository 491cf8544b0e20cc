import { describe, expect, it } from 'vitest'
import { runSeed } from '../src/run.js'

describe('simulator', () => {
  it('finds no violation over seeds with every fault, and commits along the way', async () => {
    let committed = 0
    let crashes = 0
    for (let seed = 1000; seed < 1012; seed++) {
      const r = await runSeed({ seed, faults: 'all' })
      expect(r.violations, `seed ${seed}`).toEqual([])
      committed += r.stats.committed
      crashes += r.stats.crashes
    }
    expect(committed).toBeGreaterThan(300)
    expect(crashes).toBeGreaterThan(0)
    // A third of the unpartitioned seeds run four observers in the dissemination tree: 6 s alone here, over 20 s beside the other suites on 2 cores.
  }, 60_000)

  it('replays a seed exactly', async () => {
    const a = await runSeed({ seed: 77, faults: 'all' })
    const b = await runSeed({ seed: 77, faults: 'all' })
    expect(b.digest).toBe(a.digest)
    expect(b.history).toEqual(a.history)
    expect(b.stats).toEqual(a.stats)
    const c = await runSeed({ seed: 78, faults: 'all' })
    expect(c.digest).not.toBe(a.digest)
    // Three whole seeds, one of them partitioned (twice the voters): longer than a unit test's default on 2 busy cores.
  }, 60_000)

  it('works with more voters and observers and no faults', async () => {
    const r = await runSeed({ seed: 5, voters: 5, observers: 2, txns: 80, faults: 'none' })
    expect(r.violations).toEqual([])
    expect(r.stats.unknown).toBe(0)
    expect(r.history.finals.length).toBe(7)
  })
})
