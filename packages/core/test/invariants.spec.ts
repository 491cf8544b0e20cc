import { describe, expect, it } from 'vitest'
import { invariants, makeTimestamp, peerTag, type Tx } from '../src/index.js'
import { ScriptGroup } from './interaction/driver.js'

const procedures = {
  put: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null } }
}

/** A group of three that committed one thunk and is quiet. */
function committed (): ScriptGroup {
  const g = new ScriptGroup(procedures, ['v0', 'v1', 'v2'])
  for (const p of ['v0', 'v1', 'v2']) g.input(p, { t: 'tick' })
  g.settle()
  g.deliver()
  g.input('v0', { t: 'submit', call: 1, req: { clientTxnId: 'c1', procedure: 'put', hash: g.hash('put'), args: { k: 'x', v: 1 } } })
  g.settle()
  for (let i = 0; i < 4; i++) { g.now += 10; for (const p of ['v0', 'v1', 'v2']) g.input(p, { t: 'tick' }); g.settle(); g.deliver() }
  return g
}

describe('invariants', () => {
  it('hold in a group that committed', () => {
    const g = committed()
    for (const p of ['v0', 'v1', 'v2']) {
      expect(g.state(p).evaluatedCount).toBe(1)
      expect(invariants(g.state(p))).toEqual([])
    }
  })

  it('name what broke', () => {
    const g = committed()
    const s = g.state('v1')
    const stream = s.current.streams.get('v0')
    if (stream === undefined) throw new Error('no stream')
    stream.have = stream.evalNext - 3
    expect(invariants(s).join('\n')).toMatch(/have .* below evalNext/)

    const t = g.state('v2')
    t.frontier = t.lastEvaluated
    expect(invariants(t).join('\n')).toMatch(/frontier .* not above the last evaluated/)

    const u = g.state('v0')
    const entry = u.current.wm.get('v0')
    if (entry === undefined) throw new Error('no own entry')
    // A thunk in flight with a timestamp below the promise this voter already published.
    expect(entry.svw > makeTimestamp(1, peerTag('v0'), 0)).toBe(true)
    const seq = u.current.coordinator.nextSeq++
    const thunk = { ts: makeTimestamp(1, peerTag('v0'), 0), epoch: 0, coordinator: 'v0', seq, index: 0, procedure: 'put', hash: '', args: null, reads: [], writes: [], clientTxnId: 'late', firstAt: 1 }
    u.current.coordinator.inflight.set(seq, { batch: { epoch: 0, coordinator: 'v0', seq, thunks: [thunk] }, acks: new Set(), mintedAt: 0, sentAt: 0, tries: 0 })
    expect(invariants(u).join('\n')).toMatch(/below this voter's own watermark entry/)
  })
})
