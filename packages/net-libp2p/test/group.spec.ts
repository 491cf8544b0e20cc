import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey } from '@libp2p/interface'
import { MemoryStore, type Message, type Timestamp, type TxnResult } from '@tideline/core'
import { simRegistry } from '@tideline/sim'
import { MESSAGE_PROTOCOL, NetClient, NetPeer, createNodeLibp2p, encodeMessages, watermarkTopic } from '../src/index.js'

// Three voters and clients as libp2p nodes in this process, over real TCP on loopback.
const ACCOUNTS = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']
const INITIAL = 100
const transferHash = simRegistry.procedures.get('transfer')?.hash ?? ''

async function key (): Promise<{ key: PrivateKey, id: string }> {
  const k = await generateKeyPair('Ed25519')
  return { key: k, id: peerIdFromPrivateKey(k).toString() }
}

describe('a group of three voters on libp2p (loopback TCP)', () => {
  const voters: NetPeer[] = []
  let client: NetClient
  let memberKey: { key: PrivateKey, id: string }
  let clientKey: { key: PrivateKey, id: string }

  beforeAll(async () => {
    const keys = await Promise.all([key(), key(), key()])
    clientKey = await key()
    memberKey = await key()
    const config = { groupId: 'net-test', epoch: 0, voters: keys.map(k => k.id), registryHash: simRegistry.hash }
    const admitted = new Set([clientKey.id, memberKey.id])
    for (const k of keys) {
      voters.push(await NetPeer.start({ privateKey: k.key, config, registry: simRegistry, store: new MemoryStore(), admit: p => admitted.has(p) }))
    }
    const all = voters.map(v => v.addresses()[0] as string)
    // Each voter learns the others' addresses (the relay CLI passes them as --peers).
    for (const v of voters) for (const a of all) if (!a.endsWith(v.id)) await v.node.dial(multiaddr(a))
    client = await NetClient.start({ privateKey: clientKey.key, groupId: 'net-test', voters: all })
  }, 30_000)

  afterAll(async () => {
    await client?.stop()
    for (const v of voters) await v.stop()
  })

  it('commits concurrent transfers, keeps the bank total, and every replica reaches the same digest', async () => {
    const results: TxnResult[] = []
    let n = 0
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      for (let i = 0; i < 15; i++) {
        const from = ACCOUNTS[(c + i) % ACCOUNTS.length] as string
        const to = ACCOUNTS[(c + 3 * i + 1) % ACCOUNTS.length] as string
        if (from === to) continue
        results.push(await client.call({ clientTxnId: `t-${c}-${i}-${n++}`, procedure: 'transfer', hash: transferHash, args: { from, to, amount: 1 + (i % 7) } }))
      }
    }))
    expect(results.length).toBeGreaterThan(80)
    expect(results.every(r => r.status === 'committed' || r.status === 'aborted')).toBe(true)
    expect(results.filter(r => r.status === 'committed').length).toBeGreaterThan(0)
    const read = await client.read(ACCOUNTS.map(a => `acct/${a}`))
    const total = ACCOUNTS.reduce((sum, a) => sum + ((read.values[`acct/${a}`] as number | undefined) ?? INITIAL), 0)
    expect(total).toBe(INITIAL * ACCOUNTS.length)
    // Every replica evaluates the same history: same digest once all caught up.
    await expect.poll(() => new Set(voters.map(v => `${v.peer.status().evaluated}:${v.peer.status().digest}`)).size, { timeout: 10_000 }).toBe(1)
    expect(voters[0]?.peer.status().evaluated).toBeGreaterThanOrEqual(results.length)
  }, 60_000)

  it('a retried clientTxnId through another voter applies once', async () => {
    const req = { clientTxnId: 'retry-once', procedure: 'transfer', hash: transferHash, args: { from: 'a0', to: 'a1', amount: 1 } }
    const first = await client.call(req)
    const again = await client.call(req)
    expect(again).toMatchObject({ status: first.status, ts: first.ts, duplicate: true })
  }, 30_000)

  it('a non-member cannot connect; a member sending junk frames is dropped and disconnected, and the group keeps serving', async () => {
    const target = voters[0] as NetPeer
    const outsider = await key()
    const stranger = await createNodeLibp2p({ privateKey: outsider.key, listen: [], allowPeer: () => true })
    try {
      await expect(stranger.dialProtocol(multiaddr(target.addresses()[0]), MESSAGE_PROTOCOL, { signal: AbortSignal.timeout(5_000) })).rejects.toMatchObject({ name: expect.any(String) as unknown })
    } finally {
      await stranger.stop()
    }

    const member = await createNodeLibp2p({ privateKey: memberKey.key, listen: [], allowPeer: () => true })
    try {
      const junkBefore = target.transport.counters.junk ?? 0
      const frames: Uint8Array[] = [
        new Uint8Array([0xff, 0x00, 0x13]), // not CBOR
        new Uint8Array([0x9f, 0x01]), // indefinite array, unterminated
        new Uint8Array([0x83, 0x01]), // truncated array
        encodeMessages([]), // an empty bundle
        new Uint8Array(Array.from({ length: 512 }, (_, i) => (i * 131 + 7) % 256)), // noise
        new Uint8Array(200_000).fill(0x81) // absurd nesting
      ]
      for (let round = 0; round < 3; round++) {
        try {
          const stream = await member.dialProtocol(multiaddr(target.addresses()[0]), MESSAGE_PROTOCOL, { signal: AbortSignal.timeout(5_000), force: true })
          const lp = lpStream(stream)
          for (const f of frames) await lp.write(f)
        } catch {
          // the voter may hang up on us mid-way: that is the point
        }
      }
      await expect.poll(() => (target.transport.counters.junk ?? 0) - junkBefore, { timeout: 5_000 }).toBeGreaterThanOrEqual(16)
      await expect.poll(() => target.transport.counters['disconnected-for-junk'] ?? 0, { timeout: 5_000 }).toBeGreaterThanOrEqual(1)
      // valid CBOR but not a valid message: counted by the protocol as invalid, never thrown
      const invalidBefore = target.peer.status().counters.invalid ?? 0
      const stream = await member.dialProtocol(multiaddr(target.addresses()[0]), MESSAGE_PROTOCOL, { signal: AbortSignal.timeout(5_000), force: true })
      await lpStream(stream).write(encodeMessages([{ t: 'write', thunks: [{ ts: 'nope' }], wm: [] } as never]))
      await expect.poll(() => (target.peer.status().counters.invalid ?? 0) - invalidBefore, { timeout: 5_000 }).toBe(1)
    } finally {
      await member.stop()
    }
    const r = await client.call({ clientTxnId: 'after-junk', procedure: 'transfer', hash: transferHash, args: { from: 'a2', to: 'a3', amount: 1 } })
    expect(['committed', 'aborted']).toContain(r.status)
  }, 60_000)

  it('a member cannot move the watermark for a voter by gossip', async () => {
    const target = voters[1] as NetPeer
    const victim = voters[0] as NetPeer
    const member = await createNodeLibp2p({ privateKey: memberKey.key, listen: [], allowPeer: () => true })
    try {
      await member.dial(multiaddr(target.addresses()[0]))
      const topic = watermarkTopic('net-test')
      member.services.pubsub.subscribe(topic)
      const svw = `${'f'.repeat(12)}${'0'.repeat(16)}00000000` as Timestamp
      const forged: Message = { t: 'wm', wm: [{ voter: victim.id, epoch: 0, svw, count: 0 }] }
      const before = target.peer.status().counters['wm-not-own-refused'] ?? 0
      // Publish until it reaches the voter through the mesh.
      await expect.poll(async () => {
        await member.services.pubsub.publish(topic, encodeMessages([forged])).catch(() => {})
        return (target.peer.status().counters['wm-not-own-refused'] ?? 0) - before
      }, { timeout: 10_000, interval: 200 }).toBeGreaterThan(0)
      expect(target.peer.status().watermark < svw).toBe(true)
    } finally {
      await member.stop()
    }
  }, 30_000)
})
