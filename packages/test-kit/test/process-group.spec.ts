import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { NetClient, createNodeLibp2p, encodeMessages, requestJoin, watermarkTopic, messageProtocol, joinProtocol, type TidelineLibp2p } from '@tideline/net-libp2p'
import { checkHistory, formatViolation, simRegistry } from '@tideline/sim'
import { startLocalGroup, type ProcessGroup } from '../src/local-group.js'
import { ACCOUNTS, Recorder, finals, runWorkload, waitQuiescent } from '../src/workload.js'

// Three tideline-relay processes (LevelStore, real TCP on loopback) and Node clients.
// Every phase appends to one history; the simulator's checker judges it whole.
const CLIENTS = 4

describe('three relay processes', () => {
  let group: ProcessGroup
  const clients: NetClient[] = []
  const rec = new Recorder()

  const check = async (): Promise<void> => {
    await waitQuiescent(group.relays)
    const f = await finals(clients[0] as NetClient, group.relays)
    const violations = checkHistory(rec.history(f))
    expect(violations.map(formatViolation)).toEqual([])
    expect(rec.unexpected).toEqual([])
    expect(new Set(f.map(x => x.resultDigest)).size).toBe(1)
  }

  beforeAll(async () => {
    group = await startLocalGroup({ relays: 3, groupId: 'process-test' })
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(await group.startClient({ attemptTimeoutMs: 1_500, timeoutMs: 8_000 }))
    }
  }, 120_000)

  afterAll(async () => {
    for (const c of clients) await c.stop()
    await group?.stop()
  }, 60_000)

  it('runs bank and list-append workloads with no faults: zero violations, same digest everywhere', async () => {
    await runWorkload(clients, rec, 3_000, 'calm', { minOk: 40, maxMs: 30_000 })
    expect(rec.count('ok')).toBeGreaterThanOrEqual(40)
    expect(rec.count('info')).toBe(0)
    await check()
    // Every internal counter is exported by name: each relay counted every thunk it evaluated, and the group minted them all.
    const counted = await Promise.all(group.relays.map(async r => ({ m: await r.metrics(), evaluated: (await r.health()).evaluated })))
    let minted = 0
    for (const { m, evaluated } of counted) {
      expect(m.get('tideline_events_total{event="evaluated"}')).toBe(evaluated)
      minted += m.get('tideline_events_total{event="minted"}') ?? 0
    }
    expect(minted).toBe(counted[0]?.evaluated)
  }, 60_000)

  it('kill -9 of one relay mid-run, then restart: zero violations, no acknowledged transaction lost, it catches up', async () => {
    const victim = group.relays[2]
    if (victim === undefined) throw new Error('no relay')
    const okBefore = rec.count('ok')
    const before = (await victim.health()).evaluated
    const run = runWorkload(clients, rec, 6_000, 'kill')
    await new Promise(resolve => setTimeout(resolve, 1_500))
    const pid = victim.pid
    await victim.kill9()
    await new Promise(resolve => setTimeout(resolve, 1_000))
    await victim.start()
    expect(victim.pid).not.toBe(pid)
    await run
    expect(rec.count('ok')).toBeGreaterThan(okBefore)
    // The restarted relay recovered from its store and caught up with the others.
    await check()
    const after = await victim.health()
    expect(after.evaluated).toBeGreaterThan(before)
    expect(victim.logs.some(l => l.includes('"event":"recovered"'))).toBe(true)
  }, 120_000)

  it('a non-member can neither write, join nor move the watermark: refused and counted, nothing changes', async () => {
    const target = group.relays[0]
    if (target === undefined) throw new Error('no relay')
    await waitQuiescent(group.relays)
    const before = await target.health()
    const metricsBefore = await target.metrics()
    const key = await generateKeyPair('Ed25519')
    const outsider = await createNodeLibp2p({ privateKey: key, listen: [], allowPeer: () => true })
    try {
      await outsider.dial(multiaddr(target.tcp))
      await expect(requestJoin(outsider, target.id, { group: 'process-test' })).rejects.toMatchObject({ name: 'NotMemberError' })
      const transfer = simRegistry.procedures.get('transfer')?.hash ?? ''
      try {
        const s = await outsider.dialProtocol(multiaddr(target.tcp), messageProtocol('process-test'), { signal: AbortSignal.timeout(3_000) })
        await lpStream(s).write(encodeMessages([{ t: 'submit', req: { clientTxnId: 'intruder', procedure: 'transfer', hash: transfer, args: { from: 'a0', to: 'a1', amount: 50 } }, replyTo: peerIdFromPrivateKey(key).toString() }]))
      } catch {
        // refused mid-way is as good
      }
      // A watermark far below everyone's, signed by the outsider, published on the group topic.
      const topic = watermarkTopic('process-test')
      outsider.services.pubsub.subscribe(topic)
      for (let i = 0; i < 5; i++) {
        await outsider.services.pubsub.publish(topic, encodeMessages([{ t: 'wm', wm: [{ voter: target.id, epoch: 0, svw: '0'.repeat(36), count: 0 }] } as never])).catch(() => {})
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      await expect.poll(async () => (await target.metrics()).get('tideline_errors_total{kind="refused-non-member"}'), { timeout: 5_000 })
        .toBeGreaterThan(metricsBefore.get('tideline_errors_total{kind="refused-non-member"}') ?? 0)
      expect((await target.metrics()).get('tideline_errors_total{kind="join-refused"}')).toBeGreaterThan(metricsBefore.get('tideline_errors_total{kind="join-refused"}') ?? 0)
    } finally {
      await outsider.stop()
    }
    const after = await target.health()
    expect(after.evaluated).toBe(before.evaluated)
    expect(after.digest).toBe(before.digest)
    expect(after.watermark >= before.watermark).toBe(true)
    // The intruder's transfer never happened anywhere.
    const read = await (clients[0] as NetClient).read(ACCOUNTS.map(a => `acct/${a}`))
    expect(Object.values(read.values).reduce<number>((s, v) => s + ((v as number | undefined) ?? 0), 0) + 100 * ACCOUNTS.filter(a => read.values[`acct/${a}`] === undefined).length).toBe(100 * ACCOUNTS.length)
    await check()
  }, 60_000)

  it('random and truncated frames to every protocol id, from a member and an outsider: every relay keeps serving', async () => {
    const target = group.relays[1]
    if (target === undefined) throw new Error('no relay')
    const junkers: TidelineLibp2p[] = []
    try {
      for (const member of [true, false]) {
        const node = await createNodeLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [], allowPeer: () => true })
        junkers.push(node)
        await node.dial(multiaddr(target.tcp))
        if (member) await requestJoin(node, target.id, { invite: group.invite })
        // Every protocol the relay announces (identify ran on connect), plus ours by name.
        const relayId = peerIdFromString(target.id)
        await expect.poll(async () => (await node.peerStore.get(relayId).catch(() => undefined))?.protocols ?? [], { timeout: 10_000 }).toContain(messageProtocol('process-test'))
        const announced = (await node.peerStore.get(relayId)).protocols
        const protocols = [...new Set([...announced, messageProtocol('process-test'), joinProtocol('process-test')])]
        expect(protocols).toEqual(expect.arrayContaining([messageProtocol('process-test'), joinProtocol('process-test'), '/ipfs/id/1.0.0']))
        expect(protocols.some(p => p.startsWith('/meshsub/'))).toBe(true)
        for (const protocol of protocols) {
          for (const frame of [
            new Uint8Array(Array.from({ length: 300 }, () => Math.floor(Math.random() * 256))), // random bytes
            new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), // runaway varint
            new Uint8Array([0xfe, 0xff, 0xff, 0x0f, 0x01, 0x02]), // huge length, truncated body
            new Uint8Array([0x05, 0x83, 0x01]) // length 5, 2 bytes then end
          ]) {
            try {
              const s = await node.dialProtocol(multiaddr(target.tcp), protocol, { signal: AbortSignal.timeout(2_000), force: false })
              s.send(frame)
              await s.close()
            } catch {
              // refused, reset or hung up on: all fine
            }
          }
        }
      }
    } finally {
      for (const j of junkers) await j.stop()
    }
    for (const r of group.relays) expect((await r.health()).ok).toBe(true)
    await runWorkload(clients, rec, 1_500, 'after-junk')
    await check()
  }, 90_000)

  it('a length prefix that never ends (continuation bytes only, stream left open) counts as junk at once', async () => {
    const target = group.relays[0]
    if (target === undefined) throw new Error('no relay')
    const node = await createNodeLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [], allowPeer: () => true })
    try {
      await node.dial(multiaddr(target.tcp))
      await requestJoin(node, target.id, { invite: group.invite })
      const junk = async (): Promise<number> => (await target.metrics()).get('tideline_errors_total{kind="junk"}') ?? 0
      const before = await junk()
      const s = await node.dialProtocol(multiaddr(target.tcp), messageProtocol('process-test'), { signal: AbortSignal.timeout(2_000) })
      // Longer than any length prefix of an allowed frame; nothing ends it, so only the length-of-length bound can.
      s.send(new Uint8Array(16).fill(0x80))
      await expect.poll(junk, { timeout: 5_000 }).toBeGreaterThan(before)
      s.abort(new Error('test done'))
    } finally {
      await node.stop()
    }
    expect((await target.health()).ok).toBe(true)
  }, 30_000)

  it('SIGTERM stops a relay cleanly (exit 0, store closed) and it comes back with the same identity and data', async () => {
    const r = group.relays[2]
    if (r === undefined) throw new Error('no relay')
    const before = await r.health()
    expect(await r.stop()).toBe(0)
    // It handed over first: the others installed an epoch without it before it stopped.
    expect(r.logs.some(l => l.includes('"event":"left"'))).toBe(true)
    expect(r.logs.some(l => l.includes('"event":"stopped"'))).toBe(true)
    await r.start()
    const after = await r.health()
    expect(after.id).toBe(before.id)
    expect(after.evaluated).toBeGreaterThanOrEqual(before.evaluated)
    await runWorkload(clients, rec, 1_000, 'after-restart')
    await check()
  }, 90_000)
})
