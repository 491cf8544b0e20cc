import { describe, expect, it } from 'vitest'
import { MemoryStore, Peer, createRegistry, type StoreBatch, type Tx } from '../src/index.js'

const registry = createRegistry({
  inc: { keys: (a: { k: string }) => ({ reads: [a.k], writes: [a.k] }), run: (tx: Tx, a: { k: string }) => { tx.put(a.k, 1); return null } }
})

/** A store whose writes fail once `broken` is set (a full disk, a failing fsync). */
class FailingStore extends MemoryStore {
  broken = false
  override async write (batch: StoreBatch): Promise<void> {
    if (this.broken) throw new Error('EIO: disk failed')
    await super.write(batch)
  }
}

describe('a failed store', () => {
  it('stops the peer and fails every pending call, read and leave with StoreFailedError, named in the status', async () => {
    const store = new FailingStore()
    const clock = { now: () => 1_000_000 }
    // Three voters, two of them silent: nothing can commit, so every call stays pending until the store fails.
    const peer = await Peer.open({ id: 'v0', config: { groupId: 'g', epoch: 0, voters: ['v0', 'v1', 'v2'], registryHash: registry.hash }, registry, store, clock, send: () => {}, checkInvariants: true })
    const settled: string[] = []
    const note = (what: string) => (r: unknown): void => { settled.push(`${what}: ${r instanceof Error ? r.name : 'ok'}`) }
    peer.submit({ clientTxnId: 'a', procedure: 'inc', hash: registry.procedures.get('inc')?.hash ?? '', args: { k: 'x' } }).then(note('submit'), note('submit'))
    peer.read(['x']).then(note('read'), note('read'))
    peer.leave().then(note('leave'), note('leave'))
    await new Promise(resolve => { setImmediate(resolve) })
    expect(settled).toEqual([])
    store.broken = true
    peer.tick() // the clock lease needs renewing: a strict write, which fails
    for (let i = 0; i < 5 && settled.length < 3; i++) await new Promise(resolve => { setImmediate(resolve) })
    expect(settled.sort()).toEqual(['leave: StoreFailedError', 'read: StoreFailedError', 'submit: StoreFailedError'])
    expect(peer.status()).toMatchObject({ status: 'failed', failed: 'EIO: disk failed' })
    // A failed peer refuses new work at once, with a named error.
    await expect(peer.read(['x'])).rejects.toMatchObject({ name: 'PeerClosedError' })
    await expect(peer.submit({ clientTxnId: 'b', procedure: 'inc', hash: registry.procedures.get('inc')?.hash ?? '', args: { k: 'x' } })).rejects.toMatchObject({ name: 'PeerClosedError' })
  })
})
