import { afterAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { MemoryStore, verifyBatches, type Batch, type Input } from '@tideline/core'
import { NetClient, NetPeer, createNodeLibp2p, libp2pDecisionSigner } from '@tideline/net-libp2p'
import { workloadRegistry } from '@tideline/workloads'
import { startLocalGroup, type ProcessGroup } from '../src/local-group.js'
import { waitUntil } from '../src/workload.js'

// Signed batches over real relay processes (docs/design/tabs.md, step 1): every batch an observer
// receives carries its coordinator's signature, through the relays' signer, the wire codec and
// the observer's store, and it checks out with the observer's own libp2p-key signer.

const hash = (p: string): string => workloadRegistry.procedures.get(p)?.hash ?? ''

describe('signed batches between processes', () => {
  let group: ProcessGroup | undefined
  const stops: Array<() => Promise<void>> = []
  afterAll(async () => {
    for (const stop of stops) await stop().catch(() => {})
    await group?.stop()
  }, 60_000)

  it('an observer receives each relay\'s batches signed, and every signature checks out against its coordinator\'s key; a changed one does not', async () => {
    group = await startLocalGroup({ relays: 3, groupId: 'signed-batches-test' })
    const key = await generateKeyPair('Ed25519')
    const store = new MemoryStore()
    const observer = await NetPeer.start({
      privateKey: key,
      genesis: group.genesis,
      invite: group.invite,
      registry: workloadRegistry,
      store,
      createNode: async k => await createNodeLibp2p({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true }),
      peers: group.relays.map(r => r.tcp),
      candidate: false
    })
    stops.push(async () => { await observer.stop() })
    const clients = await Promise.all([0, 1, 2].map(async home => await (group as ProcessGroup).startClient({ attemptTimeoutMs: 2_000, timeoutMs: 10_000 }, { home })))
    for (const c of clients) stops.push(async () => { await c.stop() })
    // Calls through each relay, so each coordinates some.
    await Promise.all(clients.map(async (c: NetClient, i) => {
      for (let n = 0; n < 5; n++) expect((await c.call({ clientTxnId: `s${i}-${n}`, procedure: 'transfer', hash: hash('transfer'), args: { from: `a${i}`, to: `a${i + 3}`, amount: 1 } })).status).toBe('committed')
    }))
    await waitUntil('the observer evaluated all 15', async () => observer.peer.status().evaluated >= 15, 20_000)
    const batches: Batch[] = []
    for (const r of group.relays) batches.push(...(await store.batchRange(r.id, 0, 1, 1_000)).batches)
    expect(new Set(batches.map(b => b.coordinator)).size).toBe(3)
    expect(batches.every(b => typeof b.sig === 'string' && b.sig.length === 128)).toBe(true)
    const check = async (bs: Batch[]): Promise<readonly boolean[]> => ((await verifyBatches(libp2pDecisionSigner(key), 'signed-batches-test', { t: 'verify-batches', from: 'x', batches: bs })) as Extract<Input, { t: 'batches-verified' }>).ok
    expect(await check(batches)).toEqual(batches.map(() => true))
    const changed = batches.map(b => ({ ...b, thunks: b.thunks.map((t, i) => i === 0 ? { ...t, firstAt: t.firstAt + 1 } : t) }))
    expect(await check(changed)).toEqual(batches.map(() => false))
  }, 120_000)
})
