import { describe, expect, it } from 'vitest'
import { BUSY_TICK_MS, BUSY_WINDOW_MS, DEFAULT_GOSSIP_INTERVAL_MS, DEFAULT_IDLE_HEARTBEAT_MS, MIN_TICK_MS } from '../src/constants.js'
import { isBusy, nextDue, type Tx } from '../src/index.js'
import { ScriptGroup } from './interaction/driver.js'

const procedures = {
  put: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null } }
}
const voters = ['v0', 'v1', 'v2']

/** Ticks every peer at `now`, then carries out and delivers everything. */
function round (g: ScriptGroup): void {
  for (const p of voters) g.input(p, { t: 'tick' })
  g.settle()
  g.deliver()
  g.settle()
}

/** Moves every peer's clock forward in rounds of `stepMs` until `ms` passed. */
function advance (g: ScriptGroup, ms: number, stepMs = 10): void {
  for (let t = 0; t < ms; t += stepMs) {
    g.now += stepMs
    round(g)
  }
}

describe('nextDue: no fixed tick', () => {
  it('a busy voter ticks when its entry is due and at least every BUSY_TICK_MS; once idle it sleeps until its heartbeat, and work wakes it at once', () => {
    const g = new ScriptGroup(procedures, voters)
    round(g)
    g.input('v0', { t: 'submit', call: 1, req: { clientTxnId: 'c1', procedure: 'put', hash: g.hash('put'), args: { k: 'x', v: 1 } } })
    g.settle()
    const v0 = g.state('v0')
    expect(isBusy(v0)).toBe(true)
    // Its entry went out with the write: the next one is due a gossip interval later, and so is its next tick.
    expect(v0.lastGossip).toBe(v0.now)
    expect(nextDue(v0) - v0.now).toBe(Math.min(BUSY_TICK_MS, DEFAULT_GOSSIP_INTERVAL_MS))
    // An entry overdue (its last one long ago): at once.
    v0.lastGossip = v0.now - 10 * DEFAULT_GOSSIP_INTERVAL_MS
    expect(nextDue(v0) - v0.now).toBe(MIN_TICK_MS)
    v0.lastGossip = v0.now
    advance(g, BUSY_WINDOW_MS + 50)
    for (const p of voters) {
      const s = g.state(p)
      expect(s.evaluatedCount).toBe(1)
      expect(isBusy(s)).toBe(false)
      const wait = nextDue(s) - g.now
      // Asleep until the heartbeat after its last publish: far longer than a busy tick, never longer than a heartbeat.
      expect(wait).toBeGreaterThan(BUSY_TICK_MS)
      expect(wait).toBeLessThanOrEqual(DEFAULT_IDLE_HEARTBEAT_MS)
    }
    // A strict read is work: the voter is busy again at once.
    g.input('v1', { t: 'read', call: 2, keys: ['x'], consistency: 'strict' })
    expect(nextDue(g.state('v1')) - g.now).toBeLessThanOrEqual(BUSY_TICK_MS)
  })

  it('an idle voter wakes when the failure detector would suspect a silent voter, even with no heartbeat due', () => {
    const g = new ScriptGroup(procedures, voters)
    round(g)
    advance(g, BUSY_WINDOW_MS + 50)
    const v0 = g.state('v0')
    expect(isBusy(v0)).toBe(false)
    // v2 falls silent: v0's next wake is no later than the moment v2 becomes a suspect (suspectMs 200 here).
    const heard = v0.current.lastHeard.get('v2') ?? 0
    expect(nextDue(v0)).toBeLessThanOrEqual(heard + v0.options.suspectMs + 1)
  })
})
