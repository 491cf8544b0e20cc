import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NetClient } from '@tideline/net-libp2p'
import { checkHistory, formatViolation } from '@tideline/sim'
import { workloadRegistry } from '@tideline/workloads'
import { startLocalGroup, type ProcessGroup, type RelayProcess } from '../src/local-group.js'
import { Recorder, finals, runWorkload, waitQuiescent, waitUntil } from '../src/workload.js'

// Reconfiguration with real processes: 3 relays (default failure detector), Node clients
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
    // The failure detector (about 0.5 s here, at most 2 s) plus one epoch change.
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

  it('a call in flight to a relay that is killed goes on to the next relay at once; restarted, the relay is joined again before it is asked', async () => {
    const victim = group.relays[0] as RelayProcess
    const client = await group.startClient({ attemptTimeoutMs: 30_000, timeoutMs: 40_000 }, { home: 0 })
    const hash = workloadRegistry.procedures.get('signNote')?.hash ?? ''
    try {
      expect((await client.call({ clientTxnId: 'mid-call-0', procedure: 'signNote', hash, args: { k: 'mid-call' } })).status).toBe('committed')
      // Stopped, the relay takes the call's bytes but can never answer; then it dies, and its connection closes.
      victim.pause()
      const started = performance.now()
      const call = client.call({ clientTxnId: 'mid-call-1', procedure: 'signNote', hash, args: { k: 'mid-call' } })
      await sleep(300)
      await victim.kill9()
      expect((await call).status).toBe('committed')
      // Waiting out the attempt would take 30 s; moving on at the closed connection, the failure detector and one epoch change.
      expect(performance.now() - started).toBeLessThan(15_000)
      await victim.start()
      await waitUntil('three voters again', async () => (await Promise.all(group.relays.map(votersOf))).every(v => v.length === 3), 20_000)
      // Restarted, the relay has forgotten this client: a request to it waits for the client's join on the new
      // connection instead of racing ahead of it (refused as a non-member's, it would wait out the 30 s attempt).
      const askedAt = performance.now()
      const read = await client.read(['note/mid-call'], 'snapshot', { voter: victim.id })
      expect(performance.now() - askedAt).toBeLessThan(15_000)
      expect(read.values['note/mid-call']).toBeDefined()
    } finally {
      await client.stop()
    }
  }, 120_000)

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
