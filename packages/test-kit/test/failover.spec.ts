import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NetClient } from '@tideline/net-libp2p'
import { checkHistory, formatViolation } from '@tideline/sim'
import { startLocalGroup, type ProcessGroup, type RelayProcess } from '../src/local-group.js'
import { Recorder, finals, runWorkload, waitQuiescent, waitUntil } from '../src/workload.js'

// Reconfiguration with real processes: 3 relays (default failure detector, 2 s), Node clients
// under load throughout; one history for the whole file, judged by the simulator's checker.
const CLIENTS = 4
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

const votersOf = async (r: RelayProcess): Promise<readonly string[]> => (await r.health()).voters

describe('reconfiguration across relay processes', () => {
  let group: ProcessGroup
  const clients: NetClient[] = []
  const rec = new Recorder()

  beforeAll(async () => {
    group = await startLocalGroup({ relays: 3, groupId: 'failover-test' })
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(await group.startClient({ attemptTimeoutMs: 1_500, timeoutMs: 12_000 }))
    }
  }, 120_000)

  afterAll(async () => {
    for (const c of clients) await c.stop()
    await group?.stop()
  }, 60_000)

  it('kill -9 of one relay under load: the other two vote it out and keep committing', async () => {
    const [a, b, victim] = group.relays as [RelayProcess, RelayProcess, RelayProcess]
    const run = runWorkload(clients, rec, 9_000, 'kill')
    await sleep(1_500)
    await victim.kill9()
    const okAtKill = rec.count('ok')
    // The failure detector (2 s) plus one epoch change.
    const ms = await waitUntil('an epoch without the dead relay', async () => !(await votersOf(a)).includes(victim.id), 8_000)
    await run
    expect(ms).toBeLessThan(6_000)
    expect(await votersOf(b)).toEqual((await votersOf(a)))
    expect((await a.health()).epoch).toBeGreaterThanOrEqual(1)
    // Calls made after the kill committed on the other two.
    expect(rec.count('ok') - okAtKill).toBeGreaterThan(20)
  }, 60_000)

  it('restarted, it rejoins as an observer and is voted in again, under load', async () => {
    const victim = group.relays[2] as RelayProcess
    const run = runWorkload(clients, rec, 8_000, 'rejoin')
    await sleep(500)
    await victim.start()
    await waitUntil('three voters again', async () => (await Promise.all(group.relays.map(votersOf))).every(v => v.length === 3), 15_000)
    await run
    expect((await victim.health()).role).toBe('voter')
  }, 60_000)

  it('a fourth relay is added online under load, and every replica ends with one history', async () => {
    const run = runWorkload(clients, rec, 8_000, 'add')
    await sleep(500)
    const fourth = await group.addRelay()
    await waitUntil('four voters', async () => (await Promise.all(group.relays.map(votersOf))).every(v => v.length === 4 && v.includes(fourth.id)), 20_000)
    await run
    await waitQuiescent(group.relays, 60_000)
    // A reader that knows the new relay's address reads each replica's state from that replica.
    const reader = await group.startClient({ attemptTimeoutMs: 1_500, timeoutMs: 12_000 })
    clients.push(reader)
    const f = await finals(reader, group.relays)
    expect(checkHistory(rec.history(f)).map(formatViolation)).toEqual([])
    expect(rec.unexpected).toEqual([])
    expect(new Set(f.map(x => x.resultDigest)).size).toBe(1)
    expect(f).toHaveLength(4)
  }, 120_000)
})
