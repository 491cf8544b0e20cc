import { describe, expect, it } from 'vitest'
import { Placement, partitionOf, type PartitionSpec, type TxnResult } from '@tideline/core'
import { accountKey, simRegistry } from '@tideline/sim'
import { INITIAL_BALANCE } from '../src/workload.js'
import { startLocalGroup } from '../src/local-group.js'

// Partial replication between voters in real relay processes: six relays in two replica sets.
// A relay receives only the thunks that touch its set; transfers within and across sets commit
// and the total stays exact; a relay killed for good is voted out and the others go on.

const spec: PartitionSpec = { count: 2, replicas: 3, depth: 2 }
const transfer = simRegistry.procedures.get('transfer')?.hash ?? ''
const names = Array.from({ length: 40 }, (_, i) => `a${i}`)
const partOf = (name: string): number => partitionOf(accountKey(name), spec)

describe('partial replication in relay processes', () => {
  it('six relays in two sets: each receives only its set\'s thunks, the total stays exact, and a relay killed for good is voted out', async () => {
    // A failure detector slow enough that a busy machine does not vote anyone out during the first part: an epoch
    // change's decision carries batches whole to every voter, which the per-relay counts below would include.
    const group = await startLocalGroup({ relays: 6, groupId: 'partial', partitions: spec, relayArgs: () => ['--suspect-ms', '8000', '--suspect-min-ms', '4000'] })
    try {
      const placement = new Placement(spec, group.relays.map(r => r.id))
      const byPart = [0, 1].map(p => names.filter(n => partOf(n) === p))
      expect(byPart.every(l => l.length >= 4)).toBe(true)
      const client = await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 30_000 })
      // 30 transfers in one partition each (alternating), 10 across.
      const moves = Array.from({ length: 40 }, (_, i) => {
        const p = i % 2
        const from = (byPart[p] as string[])[i % 4] as string
        const to = i >= 30 ? (byPart[1 - p] as string[])[(i + 1) % 4] as string : (byPart[p] as string[])[(i + 1) % 4] as string
        return { from, to, amount: 1 + (i % 3) }
      })
      const call = async (id: string, m: { from: string, to: string, amount: number }): Promise<TxnResult> => await client.call({ clientTxnId: id, procedure: 'transfer', hash: transfer, args: m })
      const results = await Promise.all(moves.map(async (m, i) => await call(`t${i}`, m)))
      expect(results.every(r => r.status === 'committed')).toBe(true)
      const total = async (): Promise<number> => {
        const r = await client.read(names.map(accountKey))
        return names.reduce((sum, n) => sum + ((r.values[accountKey(n)] as number | undefined) ?? INITIAL_BALANCE), 0)
      }
      expect(await total()).toBe(names.length * INITIAL_BALANCE)
      // A relay received at most the transfers that touch its set, and fewer than all of them.
      const metrics = await Promise.all(group.relays.map(async r => await r.metrics()))
      expect((await group.relays[0]?.health())?.epoch).toBe(0)
      group.relays.forEach((r, i) => {
        const j = placement.setOf(r.id)
        const touching = moves.filter(m => placement.setOfPartition(partOf(m.from)) === j || placement.setOfPartition(partOf(m.to)) === j).length
        const got = metrics[i]?.get('tideline_events_total{event="thunks-received"}') ?? 0
        expect(got, `relay ${i} of set ${String(j)}`).toBeLessThanOrEqual(touching)
        expect(got, `relay ${i} of set ${String(j)}`).toBeLessThan(moves.length - 5)
      })
      // One relay dies for good: it is voted out, and single-set and cross-set transfers go on committing.
      await group.relays[1]?.kill9()
      const more = await Promise.all(moves.slice(0, 20).map(async (m, i) => await call(`u${i}`, { from: m.to, to: m.from, amount: 1 })))
      expect(more.every(r => r.status === 'committed')).toBe(true)
      expect(await total()).toBe(names.length * INITIAL_BALANCE)
      const health = await group.relays[0]?.health()
      expect(health?.voters).not.toContain(group.relays[1]?.id)
      await client.stop()
    } finally {
      await group.stop()
    }
  }, 120_000)
})
