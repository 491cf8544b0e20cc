import { afterAll, describe, expect, it } from 'vitest'
import type { PrivateKey } from '@libp2p/interface'
import { MemoryStore } from '@tideline/core'
import { createNodeLibp2p } from '@tideline/net-libp2p'
import { openDatabase, type Database } from '../src/index.js'
import { bank } from './bank.js'

// Tab voters in Node (docs/design/tabs.md §3–4): a database founds a group with itself its only voter and
// invites another with the voter role, which is voted in. The second one's page lifecycle runs on a
// document of its own (Node has none: an EventTarget with a visibilityState, the events a page gets).
// Real peers on loopback TCP; the Chromium test (e2e/tests/db-tab-voters.spec.ts) does the same in tabs.

const tcpNode = async (privateKey: PrivateKey): Promise<Awaited<ReturnType<typeof createNodeLibp2p>>> => await createNodeLibp2p({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true })

class FakeDocument extends EventTarget {
  visibilityState: 'visible' | 'hidden' = 'visible'
  set (state: 'visible' | 'hidden'): void {
    this.visibilityState = state
    this.dispatchEvent(new Event('visibilitychange'))
  }
}

async function until (what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('tab voters (Node)', () => {
  const dbs: Array<Database<typeof bank>> = []
  afterAll(async () => {
    for (const d of dbs) await d.close()
    delete (globalThis as { document?: unknown }).document
  })

  it('refuses `found` without role voter, with an invite, and a voter in the tree', async () => {
    await expect(openDatabase({ name: 'x', procedures: bank, peers: [], store: new MemoryStore(), found: { groupId: 'g' } })).rejects.toThrow(TypeError)
    await expect(openDatabase({ name: 'x', procedures: bank, peers: [], store: new MemoryStore(), found: { groupId: 'g' }, role: 'voter', invite: 'x' })).rejects.toThrow(TypeError)
    await expect(openDatabase({ name: 'x', procedures: bank, peers: [], store: new MemoryStore(), role: 'voter', tree: true })).rejects.toThrow(TypeError)
  })

  it('a founded group takes an invited voter; hidden past the grace period it hands over, shown it is voted back in; a quick switch keeps it a voter', async () => {
    const founderStore = new MemoryStore()
    const founder = await openDatabase({ name: 'bank', procedures: bank, peers: [], store: founderStore, createNode: tcpNode, role: 'voter', found: { groupId: 'tab-voters' }, timeoutMs: 5_000 })
    dbs.push(founder)
    await founder.online
    expect(founder.status()).toMatchObject({ role: 'voter', voters: 1, network: 'online' })
    expect((await founder.call('deposit', { to: 'a', amount: 5 })).status).toBe('committed')
    const invite = await founder.invite({ role: 'voter' })
    const writerInvite = await founder.invite({ role: 'writer' })
    const address = (founder as unknown as { net: { addresses(): string[] } }).net.addresses()[0] as string
    // Only the second database gets a document (the founder opened before there was one).
    const doc = new FakeDocument()
    ;(globalThis as { document?: unknown }).document = doc
    const second = await openDatabase({ name: 'bank', procedures: bank, peers: [address], invite, creator: founder.id, store: new MemoryStore(), createNode: tcpNode, role: 'voter', handOverGraceMs: 300, timeoutMs: 5_000 })
    dbs.push(second)
    await until('the invited tab voted in', () => founder.status().voters === 2 && second.status().role === 'voter')
    // A writer's invite does not make a voter: it stays an observer however long it asks.
    delete (globalThis as { document?: unknown }).document
    const writer = await openDatabase({ name: 'bank', procedures: bank, peers: [address], invite: writerInvite, creator: founder.id, store: new MemoryStore(), createNode: tcpNode, role: 'voter', timeoutMs: 5_000 })
    dbs.push(writer)
    ;(globalThis as { document?: unknown }).document = doc
    await writer.online
    await until('the writer-invited tab caught up', () => writer.status().evaluated >= 1)
    // Switched away and back within the grace period: still a voter, nothing handed over.
    doc.set('hidden')
    doc.set('visible')
    await new Promise(resolve => setTimeout(resolve, 600))
    expect(second.status()).toMatchObject({ role: 'voter', handOver: { visible: true, handovers: 0, asks: 0 } })
    // Hidden past it: an epoch without it, and commits go on.
    const epoch = founder.status().epoch
    doc.set('hidden')
    await until('the hidden tab handed over', () => founder.status().voters === 1 && second.status().role === 'observer')
    expect(second.status().handOver).toMatchObject({ visible: false, handovers: 1, handedOver: 1 })
    expect(founder.status().epoch).toBeGreaterThan(epoch)
    expect((await founder.call('deposit', { to: 'a', amount: 1 })).status).toBe('committed')
    // Shown again, voted back in.
    doc.set('visible')
    await until('the tab shown voted back in', () => founder.status().voters === 2 && second.status().role === 'voter')
    expect(second.status().handOver).toMatchObject({ visible: true, asks: 1 })
    expect((await second.call('deposit', { to: 'b', amount: 2 })).status).toBe('committed')
    expect(writer.status().role).toBe('observer')
    await until('all three agree', () => new Set([founder, second, writer].map(d => d.status().digest)).size === 1 && writer.status().evaluated === founder.status().evaluated)
    // Closing a voter hands over first: the founder is alone again at once (no failure detector's wait).
    const closedAt = Date.now()
    await second.close()
    await until('the founder alone again', () => founder.status().voters === 1)
    // Under the failure detector's bound (2 s), which a close without a hand-over would wait out.
    expect(Date.now() - closedAt).toBeLessThan(2_000)
  }, 60_000)
})
