import { describe, expect, it } from 'vitest'
import type { MemoryStore, Tx, TxnResult } from '../src/index.js'
import { TestGroup, type PeerOptions } from './harness.js'

const procedures = {
  inc: {
    keys: (a: { k: string }) => ({ reads: [a.k], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { const v = ((tx.get(a.k) as number | undefined) ?? 0) + 1; tx.put(a.k, v); return v }
  }
}

/** Steps of 5 ms; a silent voter is suspected after 1 s, so a few dozen steps of one-way silence start no epoch change. */
const OPTIONS: PeerOptions = { suspectMs: 1_000, suspectMinMs: 1_000, proposeTimeoutMs: 50, candidate: true, admitVoter: id => id.startsWith('v') }

let txn = 0
async function inc (g: TestGroup, via: string, maxSteps = 600): Promise<TxnResult> {
  const r = await g.run(g.peer(via).submit({ clientTxnId: `t${++txn}`, procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' } }, { timeoutMs: maxSteps * 5 }), maxSteps)
  if (!r.done) throw new Error(`inc via ${via} did not settle in ${maxSteps} steps`)
  if ('error' in r) throw r.error
  return r.value
}

describe('storage faults', () => {
  it('a voter whose store fails a write (a full disk, a failed fsync) stops; the others vote it out and go on, and nothing acknowledged is lost', async () => {
    const g = await TestGroup.create(procedures, 3, 0, OPTIONS)
    for (let i = 1; i <= 3; i++) expect(await inc(g, 'v0')).toMatchObject({ status: 'committed', value: i })
    const store = g.stores.get('v2') as MemoryStore
    const write = store.write.bind(store)
    // The next write fails as a full disk fails it (what LevelDB answers when a write or its sync fails).
    store.write = async () => { throw new Error('IO error: No space left on device') }
    expect(await inc(g, 'v0')).toMatchObject({ status: 'committed', value: 4 })
    expect(g.peer('v2').status().failed).toContain('No space left on device')
    for (let i = 5; i <= 7; i++) expect(await inc(g, 'v1')).toMatchObject({ status: 'committed', value: i })
    expect(g.peer('v0').status().voters).toEqual(['v0', 'v1'])
    // An operator frees space and restarts it: it recovers what it acknowledged and catches up.
    g.crash('v2')
    const recovered = g.stores.get('v2') as MemoryStore
    expect(recovered).not.toBe(store)
    void write
    await g.start('v2')
    await g.steps(400)
    expect(await inc(g, 'v2')).toMatchObject({ status: 'committed', value: 8 })
    await g.steps(60)
    expect(new Set(['v0', 'v1', 'v2'].map(id => g.peer(id).status().digest)).size).toBe(1)
    expect(g.peer('v0').status().voters).toEqual(['v0', 'v1', 'v2'])
  })

  it('a restarted voter whose store damaged batches it acked fetches them again, and promises nothing in an epoch change until it has', async () => {
    const g = await TestGroup.create(procedures, 3, 0, OPTIONS)
    expect(await inc(g, 'v0')).toMatchObject({ status: 'committed', value: 1 })
    // v2 hears nothing from v1 for a while: it persists and acks v0's batches but cannot evaluate them
    // (it lacks v1's watermark entry), so they are still to evaluate when it crashes.
    g.filter = (from, to) => !(from === 'v1' && to === 'v2')
    for (let i = 2; i <= 4; i++) expect(await inc(g, 'v0', 100)).toMatchObject({ status: 'committed', value: i })
    g.crash('v2')
    const store = g.stores.get('v2') as MemoryStore
    const cursor = store.getMetaSync('cursor') as { evalNext: Record<string, number> }
    const unevaluated = store.batchRangeSync('v0', 0, cursor.evalNext.v0 ?? 1, Infinity).batches
    expect(unevaluated.length).toBeGreaterThan(0)
    for (const b of unevaluated) store.damaged.add({ batch: { coordinator: 'v0', epoch: 0, seq: b.seq } })
    // Back, it cannot fetch them yet (gap replies to it are lost), and v0 dies: v1 needs v2's promise.
    g.filter = (_from, to, m) => !(to === 'v2' && m.t === 'gap-rep')
    await g.start('v2')
    expect(g.peer('v2').status().counters['batch-damaged']).toBe(unevaluated.length)
    g.crash('v0')
    g.peer('v1').requestEpochChange()
    await g.steps(300)
    // It refused to promise: a report without those batches could let a majority abort what v0 and it acked.
    expect(g.peer('v2').status().counters['prepare-damaged'] ?? 0).toBeGreaterThan(0)
    expect(g.peer('v1').status().epoch).toBe(0)
    // Gap replies get through: it stores the batches again, promises, and the epoch change keeps them.
    g.filter = () => true
    const r = await inc(g, 'v1', 1200)
    expect(r).toMatchObject({ status: 'committed', value: 5 })
    expect(g.peer('v1').status().epoch).toBeGreaterThan(0)
    await g.steps(100)
    expect(store.batchRangeSync('v0', 0, 1, Infinity).damaged).toEqual([])
    const v2 = g.peer('v2').status()
    expect(v2.counters['batch-damaged']).toBe(unevaluated.length)
    expect(v2.digest).toBe(g.peer('v1').status().digest)
  })

  it('a restarted voter whose cursor record is damaged evaluates nothing and serves no read until a snapshot sets its place', async () => {
    const g = await TestGroup.create(procedures, 3, 0, OPTIONS)
    for (let i = 1; i <= 3; i++) expect(await inc(g, 'v0')).toMatchObject({ status: 'committed', value: i })
    await g.steps(20)
    g.crash('v2')
    const store = g.stores.get('v2') as MemoryStore
    store.damaged.add({ meta: 'cursor' })
    const v2 = await g.start('v2')
    expect(v2.status().counters['state-damaged']).toBe(1)
    expect(v2.status().healing).toBe(true)
    expect(await inc(g, 'v1')).toMatchObject({ status: 'committed', value: 4 })
    const read = await g.run(v2.read(['x'], { consistency: 'strict' }), 600)
    expect(read).toMatchObject({ done: true, value: { values: { x: 4 } } })
    expect(v2.status().counters.healed).toBe(1)
    expect(store.damaged.size).toBe(0)
    await g.steps(40)
    expect(v2.status().digest).toBe(g.peer('v1').status().digest)
  })

  it('the scrub finds a damaged value no transaction reads, and the replica heals it', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { ...OPTIONS, scrubIntervalMs: 500 })
    const y = await g.run(g.peer('v0').submit({ clientTxnId: `t${++txn}`, procedure: 'inc', hash: g.hash('inc'), args: { k: 'y' } }), 600)
    expect(y).toMatchObject({ done: true, value: { status: 'committed' } })
    await g.steps(20)
    const store = g.stores.get('v2') as MemoryStore
    store.damaged.add({ value: 'y' })
    // Only 'x' is touched from here on: nothing but the scrub reads 'y'.
    for (let i = 1; i <= 3; i++) expect(await inc(g, 'v0')).toMatchObject({ status: 'committed', value: i })
    await g.steps(300)
    const v2 = g.peer('v2').status()
    expect(v2.counters['state-damaged']).toBe(1)
    expect(v2.counters.healed).toBe(1)
    expect(store.damaged.size).toBe(0)
    expect(v2.digest).toBe(g.peer('v0').status().digest)
  })
})
