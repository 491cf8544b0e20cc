import { describe, expect, it } from 'vitest'
import type { Tx } from '../src/index.js'
import { ScriptGroup } from './interaction/driver.js'

const procedures = {
  put: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null } }
}
const voters = ['v0', 'v1', 'v2']

/** Calls `n` puts at `at` in one instant; returns the settle lines for them (committed or refused). */
function burst (g: ScriptGroup, at: string, from: number, n: number): void {
  for (let i = from; i < from + n; i++) g.input(at, { t: 'submit', call: i, req: { clientTxnId: `c${i}`, procedure: 'put', hash: g.hash('put'), args: { k: `k${i}`, v: i } } })
}

function settle (g: ScriptGroup, ms: number): string[] {
  g.rounds(ms, voters)
  return g.take().filter(l => l.includes('settle call'))
}

describe('a voter\'s call limit (maxCallsPerSec)', () => {
  it('takes a second\'s worth at once, refuses the rest with RateLimitedError before minting, and takes more as the bucket refills', () => {
    const g = new ScriptGroup(procedures, voters, [], { suspectMs: 2_000, proposeTimeoutMs: 50, maxCallsPerSec: 5 })
    g.take()
    burst(g, 'v0', 1, 12)
    const refusedAtOnce = g.take().filter(l => l.includes('RateLimitedError')).length
    expect(refusedAtOnce).toBe(7)
    const done = settle(g, 500)
    expect(done.filter(l => !l.includes('Error')).length).toBe(5)
    expect(g.state('v1').evaluatedCount).toBe(5)
    expect(g.state('v0').counters['rate-limited']).toBe(7)
    // Half a second later the bucket holds 2.5 calls: two more are taken, the third refused.
    burst(g, 'v0', 20, 3)
    expect(g.take().filter(l => l.includes('RateLimitedError')).length).toBe(1)
    // Another voter keeps its own bucket (the limit is per voter: a client that spreads its calls gets each one's).
    burst(g, 'v1', 30, 5)
    expect(g.take().filter(l => l.includes('RateLimitedError')).length).toBe(0)
    settle(g, 500)
    expect(g.state('v2').evaluatedCount).toBe(12)
  })
})
