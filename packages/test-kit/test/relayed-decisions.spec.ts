import { describe, expect, it } from 'vitest'
import type { NetClient } from '@tideline/net-libp2p'
import { checkHistory, formatViolation } from '@tideline/sim'
import { startLocalGroup, type RelayProcess } from '../src/local-group.js'
import { Recorder, finals, runWorkload, waitQuiescent, waitUntil } from '../src/workload.js'

// A read replica stops while the group's only voter is `a`; two relays join and are voted in, then `a`
// dies for good. When the replica comes back, no voter of its epoch will ever answer it: it must take the
// decisions the new voters pass on (they are not members it knows of yet, so only their proofs count: the
// signatures of the voters that accepted them), and catch up by snapshot (history is kept for 300 ms).
const RETAIN = ['--retain-ms', '300']

describe('a relay every voter of whose epoch is gone for good', () => {
  it('follows the decisions the new voters pass on, catches up by snapshot and ends with the group\'s digest', async () => {
    const group = await startLocalGroup({ relays: 1, groupId: 'relayed-test', suspectMs: 1_000, relayArgs: () => RETAIN })
    const rec = new Recorder()
    const clients: NetClient[] = []
    try {
      const a = group.relays[0] as RelayProcess
      const stale = await group.addRelay(['--observer', ...RETAIN])
      await waitUntil('the read replica follows', async () => (await stale.health()).watermark !== '0'.repeat(36), 20_000)
      const before = await stale.health()
      expect(before).toMatchObject({ epoch: 0, voters: [a.id] })
      await stale.kill9()
      const d = await group.addRelay(RETAIN)
      const e = await group.addRelay(RETAIN)
      await waitUntil('three voters', async () => (await a.health()).voters.length === 3, 20_000)
      // Homes in turn over a, stale, d, e: the last two clients are homed on the relays that stay.
      for (let i = 0; i < 4; i++) clients.push(await group.startClient({ attemptTimeoutMs: 1_500, timeoutMs: 12_000 }))
      const working = clients.slice(2)
      await runWorkload(working, rec, 1_500, 'three-voters')
      await a.kill9()
      await waitUntil('a voted out', async () => !(await d.health()).voters.includes(a.id), 20_000)
      await runWorkload(working, rec, 1_500, 'two-voters')
      await waitUntil('d collected history', async () => ((await d.metrics()).get('tideline_gc_removed_total{kind="batches"}') ?? 0) > 0, 20_000)
      await stale.start()
      await waitUntil('the replica reached the group\'s epoch', async () => (await stale.health()).epoch === (await d.health()).epoch, 30_000)
      await runWorkload(working, rec, 1_500, 'after')
      await waitQuiescent([d, e, stale], 30_000)
      const m = await stale.metrics()
      expect(m.get('tideline_events_total{event="rc-decided-relayed"}')).toBeGreaterThanOrEqual(1)
      expect(m.get('tideline_snapshots_total{dir="installed"}')).toBeGreaterThanOrEqual(1)
      const h = await stale.health()
      expect(h).toMatchObject({ role: 'observer', voters: (await d.health()).voters })
      // A client that joined while the replica was down is not known to it: the finals are read by a new one.
      const reader = await group.startClient({ attemptTimeoutMs: 1_500, timeoutMs: 12_000 })
      clients.push(reader)
      const f = await finals(reader, [d, e, stale])
      expect(checkHistory(rec.history(f)).map(formatViolation)).toEqual([])
      expect(rec.unexpected).toEqual([])
      expect(new Set(f.map(x => x.resultDigest)).size).toBe(1)
    } finally {
      for (const c of clients) await c.stop()
      await group.stop()
    }
  }, 180_000)
})
