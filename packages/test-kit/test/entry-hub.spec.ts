import { describe, expect, it } from 'vitest'
import { simRegistry } from '@tideline/sim'
import { startLocalGroup } from '../src/local-group.js'

// The entry hub in real relay processes: in a group of four, busy voters send their watermark
// entries through one of them, which relays them (counted `entries-relayed`); `--no-entry-hub`
// makes every voter send its own to every voter, and nothing is relayed.

const transfer = simRegistry.procedures.get('transfer')?.hash ?? ''

async function relayedWith (args: readonly string[]): Promise<number[]> {
  const group = await startLocalGroup({ relays: 4, groupId: `entry-hub${args.join('')}`, relayArgs: () => args })
  try {
    const client = await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 20_000 })
    const results = await Promise.all(Array.from({ length: 60 }, async (_, i) => await client.call({ clientTxnId: `t${i}`, procedure: 'transfer', hash: transfer, args: { from: `a${i % 7}`, to: `a${(i + 3) % 7}`, amount: 1 } })))
    expect(results.every(r => r.status === 'committed')).toBe(true)
    await client.stop()
    const metrics = await Promise.all(group.relays.map(async r => await r.metrics()))
    return metrics.map(m => m.get('tideline_events_total{event="entries-relayed"}') ?? 0)
  } finally {
    await group.stop()
  }
}

describe('the entry hub in relay processes', () => {
  it('relays busy voters\' entries through one relay of four; --no-entry-hub relays none', async () => {
    const hub = await relayedWith([])
    // One hub (a second only while the voters disagree on who is alive).
    expect(hub.filter(n => n > 0).length).toBeGreaterThanOrEqual(1)
    expect(Math.max(...hub)).toBeGreaterThan(10)
    expect(await relayedWith(['--no-entry-hub'])).toEqual([0, 0, 0, 0])
  }, 90_000)
})
