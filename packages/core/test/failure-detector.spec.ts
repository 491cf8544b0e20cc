import { describe, expect, it } from 'vitest'
import { nextDue, type Tx } from '../src/index.js'
import { suspects } from '../src/protocol/reconfig/failure-detector.js'
import { newDetectorState, noteGap, silenceBound } from '../src/protocol/reconfig/silence.js'
import { ScriptGroup } from './interaction/driver.js'

const procedures = {
  put: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null } }
}
const voters = ['v0', 'v1', 'v2']
/** Bounds far apart, so that which one applied shows: suspected by 300 ms plus the usual gap, or only at 2 s. */
const BOUNDS = { suspectMs: 2_000, suspectMinMs: 300, idleHeartbeatMs: 50, proposeTimeoutMs: 50 }

/** Ticks the live peers at `now`, then carries out and delivers everything. */
function round (g: ScriptGroup, live: readonly string[]): void {
  for (const p of live) g.input(p, { t: 'tick' })
  g.settle()
  g.deliver()
  g.settle()
}

function advance (g: ScriptGroup, ms: number, live: readonly string[] = voters, stepMs = 10): void {
  for (let t = 0; t < ms; t += stepMs) {
    g.now += stepMs
    round(g, live)
  }
}

/** The first time, stepping 10 ms at a time, at which v0 proposes an epoch change (sends rc-prepare). */
function timeToProposal (g: ScriptGroup, live: readonly string[], limitMs: number): number {
  const start = g.now
  while (g.now - start < limitMs) {
    g.now += 10
    for (const p of live) g.input(p, { t: 'tick' })
    g.settle()
    if ((g.state('v0').counters['rc-proposed'] ?? 0) > 0) return g.now - start
    g.deliver()
    g.settle()
  }
  return Infinity
}

describe('silence bounds', () => {
  it('a steady voter gets suspectMinMs plus its gap; an irregular one longer; none beyond suspectMs; an unknown one suspectMs', () => {
    const d = newDetectorState()
    for (let i = 0; i < 50; i++) noteGap(d, 'steady', 20)
    for (let i = 0; i < 50; i++) noteGap(d, 'irregular', i % 2 === 0 ? 10 : 300)
    for (let i = 0; i < 50; i++) noteGap(d, 'slow', 1_800)
    const steady = silenceBound(d, 'steady', 300, 2_000)
    expect(steady).toBeGreaterThanOrEqual(320)
    expect(steady).toBeLessThan(330)
    expect(silenceBound(d, 'irregular', 300, 2_000)).toBeGreaterThan(steady + 400)
    expect(silenceBound(d, 'slow', 300, 2_000)).toBe(2_000)
    expect(silenceBound(d, 'never-heard', 300, 2_000)).toBe(2_000)
  })
})

describe('the failure detector', () => {
  it('a voter that stops is suspected and an epoch change proposed well before suspectMs', () => {
    const g = new ScriptGroup(procedures, voters, [], BOUNDS)
    advance(g, 1_000)
    g.crash('v2')
    const t = timeToProposal(g, ['v0', 'v1'], 3_000)
    // Heartbeats every 50 ms: suspected after about 300 + 50 + a few deviations, not after 2 s.
    expect(t).toBeGreaterThan(300)
    expect(t).toBeLessThan(600)
    expect(suspects(g.state('v0'), 'v2', g.now)).toBe(true)
    expect(suspects(g.state('v0'), 'v1', g.now)).toBe(false)
  })

  it('voters that go idle after busy work (gossip every 20 ms, then a 300 ms heartbeat) are not suspected: the bound never falls below the heartbeat', () => {
    const g = new ScriptGroup(procedures, voters, [], { suspectMs: 2_000, suspectMinMs: 60, idleHeartbeatMs: 300, proposeTimeoutMs: 50 })
    // Busy for a second: a write every 10 ms through each voter in turn, so they gossip every 20 ms and the
    // detectors learn gaps of about that.
    for (let i = 0; i < 100; i++) {
      g.input(voters[i % 3] as string, { t: 'submit', call: i + 1, req: { clientTxnId: `c${i}`, procedure: 'put', hash: g.hash('put'), args: { k: `k${i}`, v: i } } })
      advance(g, 10)
    }
    // Then idle for 2 s: heartbeats only, 300 ms apart, far longer than 60 ms plus the learned gap.
    advance(g, 2_000)
    for (const v of voters) expect(g.state(v).counters['rc-proposed'] ?? 0).toBe(0)
    expect(g.state('v0').current.voters).toEqual(voters)
  })

  it('a peer that was stalled itself does not blame the voters for the silence', () => {
    const g = new ScriptGroup(procedures, voters, [], BOUNDS)
    advance(g, 1_000)
    // v0 asks to be woken, then its process stops for 1.5 s (SIGSTOP, a long GC); the others go on.
    const due = nextDue(g.state('v0'))
    const before = g.now
    while (g.now < before + 1_500) {
      g.now += 10
      for (const p of ['v1', 'v2']) g.input(p, { t: 'tick' })
      g.settle()
      g.deliver({ to: 'v1' })
      g.deliver({ to: 'v2' })
      g.settle()
    }
    expect(g.now - due).toBeGreaterThan(1_000)
    // What they sent meanwhile waits unread, as in its socket buffers.
    // It wakes: the first step finds everyone silent for 1.5 s, far past their bounds, yet suspects no one.
    g.input('v0', { t: 'tick' })
    g.settle()
    const s = g.state('v0')
    expect(s.counters['own-stall']).toBe(1)
    expect(suspects(s, 'v1', g.now)).toBe(false)
    expect(suspects(s, 'v2', g.now)).toBe(false)
    expect(s.counters['rc-proposed'] ?? 0).toBe(0)
  })
})
