import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NetClient } from '@tideline/net-libp2p'
import { makeTimestamp, timestampMs, type Timestamp } from '@tideline/core'
import { LevelStore } from '@tideline/store-node'
import { checkHistory, formatViolation } from '@tideline/sim'
import { startLocalGroup, type ProcessGroup, type RelayProcess } from '../src/local-group.js'
import { damageRelayStore } from '../src/damage.js'
import { Recorder, finals, runWorkload, waitQuiescent, waitUntil } from '../src/workload.js'

// Bounded history with real processes: relays keep 300 ms of history below the voters' durable
// frontier, so a relay that lost its disk cannot replay the group's history from anyone and must
// rejoin by snapshot. One history for the whole file, judged by the simulator's checker.
const CLIENTS = 3

describe('a relay that lost its store rejoins by snapshot', () => {
  let group: ProcessGroup
  const clients: NetClient[] = []
  const rec = new Recorder()

  beforeAll(async () => {
    group = await startLocalGroup({ relays: 3, groupId: 'snapshot-test', relayArgs: () => ['--retain-ms', '300'] })
    for (let i = 0; i < CLIENTS; i++) clients.push(await group.startClient({ attemptTimeoutMs: 1_500, timeoutMs: 12_000 }))
  }, 120_000)

  afterAll(async () => {
    for (const c of clients) await c.stop()
    await group?.stop()
  }, 60_000)

  it('kill -9, store wiped, restarted: it takes a snapshot, is voted in again and ends with the group\'s digest', async () => {
    const [a, b, victim] = group.relays as [RelayProcess, RelayProcess, RelayProcess]
    await runWorkload(clients, rec, 2_500, 'before')
    await victim.kill9()
    // Its disk is gone (the identity stays: it is the same member).
    await rm(join(victim.dataDir, 'store'), { recursive: true, force: true })
    await waitUntil('an epoch without the dead relay', async () => !(await a.health()).voters.includes(victim.id), 10_000)
    await runWorkload(clients, rec, 2_500, 'without')
    // The survivors collected what the victim would need to replay from genesis.
    await waitUntil('a survivor collected batches', async () => ((await a.metrics()).get('tideline_gc_removed_total{kind="batches"}') ?? 0) > 0, 20_000)
    await victim.start()
    const run = runWorkload(clients, rec, 4_000, 'rejoin')
    await waitUntil('three voters again', async () => (await Promise.all(group.relays.map(async r => (await r.health()).voters))).every(v => v.length === 3), 20_000)
    await run
    await waitQuiescent(group.relays, 30_000)
    const m = await victim.metrics()
    expect(m.get('tideline_snapshots_total{dir="installed"}')).toBeGreaterThanOrEqual(1)
    expect([m.get('tideline_sync_phase{phase="live"}'), m.get('tideline_sync_phase{phase="snapshot"}')]).toEqual([1, 0])
    const served = ((await a.metrics()).get('tideline_snapshots_total{dir="served"}') ?? 0) + ((await b.metrics()).get('tideline_snapshots_total{dir="served"}') ?? 0)
    expect(served).toBeGreaterThanOrEqual(1)
    const f = await finals(clients[0] as NetClient, group.relays)
    expect(checkHistory(rec.history(f)).map(formatViolation)).toEqual([])
    expect(rec.unexpected).toEqual([])
    expect(new Set(f.map(x => x.resultDigest)).size).toBe(1)
    expect((await victim.health()).role).toBe('voter')
  }, 120_000)

  it('a relay whose store was edited while it was down finds out when it opens, heals by snapshot, and the checker passes over the whole history', async () => {
    const victim = group.relays[1] as RelayProcess
    await runWorkload(clients, rec, 2_000, 'before-edit')
    await victim.kill9()
    // Someone edits its LevelDB: a key no transaction wrote appears below its cursor.
    const store = await LevelStore.open({ path: join(victim.dataDir, 'store') })
    // Below its durable frontier, at a timestamp no peer mints (the predecessor of a thunk's may be
    // another thunk's, already settled, and a second settlement of a timestamp changes nothing).
    const cursor = await store.getMeta('cursor') as { frontier: Timestamp }
    const planted = makeTimestamp(timestampMs(cursor.frontier) - 1, '0'.repeat(16), 1)
    await store.write({ settle: [{ ts: planted, outcome: { status: 'committed', value: null }, writes: [['acct/planted', 1_000_000]] }] })
    expect((await store.latest('acct/planted', cursor.frontier))?.value).toBe(1_000_000)
    await store.close()
    await victim.start()
    const run = runWorkload(clients, rec, 4_000, 'after-edit')
    await waitUntil('the edited relay healed', async () => ((await victim.metrics()).get('tideline_events_total{event="healed"}') ?? 0) >= 1, 20_000)
    await run
    await waitUntil('three voters', async () => (await Promise.all(group.relays.map(async r => (await r.health()).voters))).every(v => v.length === 3), 20_000)
    await waitQuiescent(group.relays, 30_000)
    expect((await victim.metrics()).get('tideline_events_total{event="store-damaged"}')).toBe(1)
    // Healed: the planted key is gone from the replica it was planted in.
    expect((await (clients[0] as NetClient).read(['acct/planted'], 'snapshot', { voter: victim.id })).values).toEqual({})
    const f = await finals(clients[0] as NetClient, group.relays)
    expect(checkHistory(rec.history(f)).map(formatViolation)).toEqual([])
    expect(rec.unexpected).toEqual([])
    expect(new Set(f.map(x => x.resultDigest)).size).toBe(1)
  }, 120_000)

  it('a relay whose disk flipped a bit in a value and tore an exactly-once record finds both by their checks, serves neither, and heals by snapshot', async () => {
    const victim = group.relays[2] as RelayProcess
    await runWorkload(clients, rec, 2_000, 'before-damage')
    await victim.kill9()
    // The LevelDB entries themselves: a value with a bit flipped, an exactly-once record cut short.
    expect(await damageRelayStore(victim.dataDir, 'value', 'bit-flip')).toBeDefined()
    expect(await damageRelayStore(victim.dataDir, 'record', 'torn')).toBeDefined()
    await victim.start()
    const run = runWorkload(clients, rec, 3_000, 'after-damage')
    await waitUntil('the damaged relay healed', async () => ((await victim.metrics()).get('tideline_events_total{event="healed"}') ?? 0) >= 1, 20_000)
    await run
    await waitUntil('three voters', async () => (await Promise.all(group.relays.map(async r => (await r.health()).voters))).every(v => v.length === 3), 20_000)
    await waitQuiescent(group.relays, 30_000)
    const m = await victim.metrics()
    expect(m.get('tideline_events_total{event="state-damaged"}')).toBeGreaterThanOrEqual(1)
    const f = await finals(clients[0] as NetClient, group.relays)
    expect(checkHistory(rec.history(f)).map(formatViolation)).toEqual([])
    expect(rec.unexpected).toEqual([])
    expect(new Set(f.map(x => x.resultDigest)).size).toBe(1)
    expect(new Set(f.map(x => x.stateDigest)).size).toBe(1)
  }, 120_000)

  it('a read replica started after a relay was voted in follows the group: it joins the new voter too and its watermark moves', async () => {
    const fourth = await group.addRelay()
    await waitUntil('four voters', async () => (await Promise.all(group.relays.slice(0, 3).map(async r => (await r.health()).voters))).every(v => v.length === 4 && v.includes(fourth.id)), 20_000)
    await runWorkload(clients, rec, 1_500, 'four-voters')
    const replica = await group.addRelay(['--observer'])
    const target = (await fourth.health()).evaluated
    // Without the new voter's watermark entry the replica's watermark would stay at zero for ever.
    await waitUntil('the replica caught up and follows the watermark', async () => {
      const h = await replica.health()
      return h.evaluated >= target && h.watermark !== '0'.repeat(36)
    }, 20_000)
    await runWorkload(clients, rec, 1_500, 'after-replica')
    await waitQuiescent([...group.relays], 30_000)
    expect((await replica.health()).role).toBe('observer')
    // GET /store counts what its store holds: the keys the workload wrote, and its batches since it joined.
    const stats = await replica.storeStats()
    const voterStats = await fourth.storeStats()
    expect(stats.values).toBe(voterStats.values)
    expect(stats.values).toBeGreaterThan(0)
    expect(stats.batches).toBeGreaterThan(0)
    expect((await replica.metrics()).get('tideline_events_total{event="join-failed"}')).toBeUndefined()
  }, 120_000)
})
