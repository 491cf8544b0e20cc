import { afterAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryStore } from '@tideline/core'
import { NetPeer, createNodeLibp2p, type NetClient } from '@tideline/net-libp2p'
import { workloadRegistry } from '@tideline/workloads'
import { startLocalGroup, type ProcessGroup } from '../src/local-group.js'
import { waitUntil } from '../src/workload.js'

// The dissemination tree over real relay processes and libp2p (docs/design/tabs.md §2): Node
// observers find places under the root relay and under each other (they dial the parent they are
// pointed at, and admit each other by their invites), take batches and signed entries from their
// parents, and evaluate everything the relays did; the relays stop sending batches to observers
// that hang under another observer.

const hash = (p: string): string => workloadRegistry.procedures.get(p)?.hash ?? ''

describe('the dissemination tree between processes', () => {
  let group: ProcessGroup | undefined
  const stops: Array<() => Promise<void>> = []
  afterAll(async () => {
    for (const stop of stops) await stop().catch(() => {})
    await group?.stop()
  }, 60_000)

  it('five observers hang in a tree below the root relay; those below another observer get their batches from it, and all reach the relays\' digest', async () => {
    group = await startLocalGroup({ relays: 3, groupId: 'tree-test' })
    const g = group
    const observers: NetPeer[] = []
    for (let i = 0; i < 5; i++) {
      const observer = await NetPeer.start({
        privateKey: await generateKeyPair('Ed25519'),
        genesis: g.genesis,
        invite: g.invite,
        registry: workloadRegistry,
        store: new MemoryStore(),
        createNode: async k => await createNodeLibp2p({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true }),
        peers: g.relays.map(r => r.tcp),
        candidate: false,
        gossip: false,
        // Two children each, so five make three levels below the root's one child.
        tree: { join: true, slots: 2 }
      })
      observers.push(observer)
      stops.push(async () => { await observer.stop() })
    }
    await waitUntil('every observer placed', async () => await Promise.resolve(observers.every(o => o.peer.status().tree.parent !== undefined)), 30_000)
    const ids = new Set(observers.map(o => o.id))
    const below = observers.filter(o => ids.has(o.peer.status().tree.parent as string))
    expect(below.length).toBeGreaterThanOrEqual(3)
    // Each observer's chain of parents ends at one relay, without a cycle.
    const roots = new Set(observers.map(o => {
      let at = o.peer.status().tree.parent as string
      for (let hops = 0; ids.has(at); hops++) {
        if (hops > 5) throw new Error('a cycle in the tree')
        at = observers.find(x => x.id === at)?.peer.status().tree.parent as string
      }
      return at
    }))
    expect(roots.size).toBe(1)
    expect(g.relays.map(r => r.id)).toContain([...roots][0])
    const writesBefore = await Promise.all(g.relays.map(async r => (await r.metrics()).get('tideline_events_total{event="out-write"}') ?? 0))
    const clients = await Promise.all([0, 1, 2].map(async home => await g.startClient({ attemptTimeoutMs: 2_000, timeoutMs: 10_000 }, { home })))
    for (const c of clients) stops.push(async () => { await c.stop() })
    await Promise.all(clients.map(async (c: NetClient, i) => {
      for (let n = 0; n < 6; n++) expect((await c.call({ clientTxnId: `t${i}-${n}`, procedure: 'transfer', hash: hash('transfer'), args: { from: `a${i}`, to: `a${i + 3}`, amount: 1 } })).status).toBe('committed')
    }))
    const digest = async (): Promise<string | undefined> => (await g.relays[0]?.health())?.digest
    await waitUntil('every observer reaches the relays\' digest', async () => {
      const d = await digest()
      return observers.every(o => o.peer.status().digest === d && o.peer.status().evaluated >= 18)
    }, 30_000)
    // Observers below another took checked batches from it; none was forged.
    for (const o of below) {
      const c = o.peer.status().counters
      expect(c['forwarded-checked'] ?? 0).toBeGreaterThan(0)
      expect(c['forged-batch'] ?? 0).toBe(0)
    }
    // Each relay sends each of its batches to the two other relays, and the root each batch to its one child: 3 per batch
    // (a retransmit or two on a busy machine), where without the tree each batch goes to 2 relays and 5 observers: 7.
    const writesAfter = await Promise.all(g.relays.map(async r => (await r.metrics()).get('tideline_events_total{event="out-write"}') ?? 0))
    const writes = writesAfter.reduce((n, w, i) => n + w - (writesBefore[i] ?? 0), 0)
    const batches = Math.max(...observers.map(o => o.peer.status().evaluated))
    expect(writes).toBeGreaterThanOrEqual(batches * 2)
    expect(writes).toBeLessThanOrEqual(batches * 4)
  }, 120_000)
})
