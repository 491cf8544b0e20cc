import { describe, expect, it } from 'vitest'
import type { Tx } from '../src/index.js'
import { liveCursor } from '../src/protocol/evaluator.js'
import { onSnapshotImported } from '../src/protocol/snapshot.js'
import { ScriptGroup } from './interaction/driver.js'

// A snapshot whose cursor is behind this replica's own evaluation for some
// stream (taken from a replica that evaluated less of it) puts evaluation
// back before batches this replica evaluated and let go. They count as had
// only while held: otherwise gap fill, which asks only past `have`, never
// fetches them, and evaluation waits for good (the simulator's seed 1868).
// Its frontier is the snapshot's too (seed 1247 of partial replication).

const procedures = {
  put: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null } }
}
const voters = ['v0', 'v1', 'v2']
describe('a snapshot cursor behind this replica', () => {
  it('counts the batches it evaluated and let go as missing again, and gap fill asks for them', () => {
    const g = new ScriptGroup(procedures, voters, [], { suspectMs: 2_000, idleHeartbeatMs: 100, quiesceAfterMs: 0 })
    let early
    for (let i = 1; i <= 3; i++) {
      g.input('v0', { t: 'submit', call: i, req: { clientTxnId: `c${i}`, procedure: 'put', hash: g.hash('put'), args: { k: `k${i}`, v: i } } })
      g.settle()
      g.rounds(100)
      // A cursor from a replica that evaluated v0's batches only up to the first.
      early ??= liveCursor(g.state('v1'))
    }
    const s = g.state('v1')
    const stream = s.current.streams.get('v0')
    if (stream === undefined || early === undefined) throw new Error('no stream')
    expect(stream.evalNext).toBeGreaterThan(2)
    expect(stream.held.size).toBe(0)
    expect(early.evalNext.v0).toBe(2)
    expect(s.frontier > early.frontier).toBe(true)
    onSnapshotImported(s, early)
    s.effects.length = 0
    expect(stream.evalNext).toBe(2)
    expect(stream.have).toBe(1)
    // The frontier is the snapshot's, below this replica's own: left above, it would pass thunks still to evaluate (seed 1247).
    expect(s.frontier).toBe(early.frontier)
    // Its next timeouts ask a voter for v0's batches from 2 on.
    g.now += 1_000
    g.input('v1', { t: 'tick' })
    g.settle()
    expect(g.onWire({ from: 'v1', t: 'gap-req' })).toBeGreaterThan(0)
  })
})
