import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalGroup, type ProcessGroup, type RelayProcess } from '../src/local-group.js'
import { waitUntil } from '../src/workload.js'

// The fault injector `pnpm nemesis` drives: `tideline-relay run --nemesis` takes a clock offset and
// links cut or slowed on arrival over its loopback HTTP port.
describe('tideline-relay run --nemesis', () => {
  let group: ProcessGroup

  beforeAll(async () => {
    // relay-2 has no --nemesis: it must not take faults.
    group = await startLocalGroup({ relays: 3, groupId: 'nemesis-test', relayArgs: i => i < 2 ? ['--nemesis'] : [] })
  }, 120_000)

  afterAll(async () => {
    await group?.stop()
  }, 60_000)

  const votersOf = async (r: RelayProcess): Promise<readonly string[]> => (await r.health()).voters

  it('a relay cut from the others both ways is voted out, and voted back in once the cut heals', async () => {
    const [a, b, c] = group.relays as [RelayProcess, RelayProcess, RelayProcess]
    // b drops what a and c send, and a drops what b sends: to a, b is silent. c (no injector) still hears b, but a's
    // proposal needs only a's and c's promises, and b, not promising, is left out.
    await b.nemesis({ dropFrom: [a.id, c.id] })
    await a.nemesis({ dropFrom: [b.id] })
    await waitUntil('a votes b out', async () => !(await votersOf(a)).includes(b.id), 20_000)
    // c installed the same epoch: a cut, not a quarrel between a and c.
    await waitUntil('c follows', async () => (await c.health()).epoch === (await a.health()).epoch, 10_000)
    expect(await votersOf(c)).toEqual(await votersOf(a))
    expect(await votersOf(c)).not.toContain(b.id)
    await Promise.all([a.nemesis({}), b.nemesis({})])
    await waitUntil('b is a voter again everywhere', async () => (await Promise.all(group.relays.map(votersOf))).every(v => v.length === 3), 30_000)
    expect((await b.health()).role).toBe('voter')
  }, 60_000)

  it('bad input is refused with a named error and changes nothing; a relay without --nemesis has no such endpoint', async () => {
    const [a, , c] = group.relays as [RelayProcess, RelayProcess, RelayProcess]
    await expect(a.nemesis({ clockOffsetMs: 'soon' as unknown as number })).rejects.toThrow(/400.*InvalidArgumentError/)
    await expect(a.nemesis({ delayFrom: { x: -5 } })).rejects.toThrow(/400.*InvalidArgumentError/)
    await expect(c.nemesis({ clockOffsetMs: 5_000 })).rejects.toThrow(/405/)
    // A clock jump within the injector is taken and healed; the group keeps its voters.
    await a.nemesis({ clockOffsetMs: 500 })
    await a.nemesis({})
    expect((await a.health()).ok).toBe(true)
  }, 30_000)
})
