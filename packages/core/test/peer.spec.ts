import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CollectingWriter, MemoryStore, SnapshotTooOldError, type SnapshotItems, type StagedDigest, StateDigest, peerTag, reconnoiter, timestampPredecessor, timestampSuccessor, type Timestamp, type Tx, type TxnResult, type Value } from '../src/index.js'
import { TestGroup } from './harness.js'

/** State outside the transaction: every replica that evaluates `leaky` gets another number (the guard cannot see this). */
const leak = { n: 0 }

const procedures = {
  leaky: {
    keys: () => ({ reads: [], writes: ['leak'] }),
    run: (tx: Tx) => { tx.put('leak', ++leak.n); return null }
  },
  inc: {
    keys: (a: { k: string }) => ({ reads: [a.k], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { const v = ((tx.get(a.k) as number | undefined) ?? 0) + 1; tx.put(a.k, v); return v }
  },
  /** Moves `from`'s whole balance to whichever account `ptr` names: a dependent transaction. */
  moveToPointer: {
    keys: (a: { from: string, expected: string }) => ({ reads: [a.from, 'ptr', a.expected], writes: [a.from, a.expected] }),
    run: (tx: Tx, a: { from: string, expected: string }) => {
      if (tx.get('ptr') !== a.expected) return tx.abort('stale')
      const amount = (tx.get(a.from) as number | undefined) ?? 0
      tx.put(a.from, 0)
      tx.put(a.expected, ((tx.get(a.expected) as number | undefined) ?? 0) + amount)
      return amount
    }
  },
  bytes: {
    keys: () => ({ reads: [], writes: [] }),
    run: (_tx: Tx, a: { n: number }) => ({ b: new Uint8Array([a.n, 255, 0]) })
  },
  refuse: {
    keys: () => ({ reads: [], writes: [] }),
    run: (tx: Tx) => tx.abort('no "thanks"')
  },
  fill: {
    keys: (a: { k: string, n: number }) => ({ reads: [], writes: [a.k] }),
    run: (tx: Tx, a: { k: string, n: number }) => { tx.put(a.k, 'x'.repeat(a.n)); return null }
  },
  setPtr: {
    keys: () => ({ reads: [], writes: ['ptr'] }),
    run: (tx: Tx, a: { to: string }) => { tx.put('ptr', a.to); return null }
  }
}

async function committed (g: TestGroup, peer: string, clientTxnId: string, k = 'x'): Promise<TxnResult> {
  const out = await g.run(g.peer(peer).submit({ clientTxnId, procedure: 'inc', hash: g.hash('inc'), args: { k } }))
  if (!out.done || !('value' in out)) throw new Error(`${clientTxnId} did not complete: ${JSON.stringify(out)}`)
  return out.value
}

describe('Peer', () => {
  it('commits through any voter; every replica evaluates the same history', async () => {
    const g = await TestGroup.create(procedures, 3, 1)
    const results = []
    for (let i = 0; i < 6; i++) results.push(await committed(g, `v${i % 3}`, `t${i}`))
    expect(results.map(r => r.status === 'committed' ? r.value : undefined)).toEqual([1, 2, 3, 4, 5, 6])
    const ts = results.map(r => r.ts)
    expect([...ts].sort()).toEqual(ts) // later calls get later timestamps (real-time order)
    await g.steps(30)
    const st = [...g.peers.values()].map(p => p.status())
    expect(new Set(st.map(s => s.digest)).size).toBe(1)
    expect(st.every(s => s.evaluated === 6)).toBe(true)
  })

  it('an idle voter sends each submission alone; submissions that arrive while its writer is busy share one batch', async () => {
    const g = await TestGroup.create(procedures, 3, 1)
    await committed(g, 'v0', 'alone')
    expect(g.peer('v0').status().counters.batches).toBe(1)
    // 40 calls in one turn: the first seals a batch of its own turn, the rest wait for the writer and go together.
    const calls = Array.from({ length: 40 }, (_, i) => g.peer('v0').submit({ clientTxnId: `b${i}`, procedure: 'inc', hash: g.hash('inc'), args: { k: `k${i % 4}` } }))
    const all = await g.run(Promise.all(calls))
    if (!all.done || !('value' in all)) throw new Error('the calls did not complete')
    expect(all.value.every(r => r.status === 'committed')).toBe(true)
    const c = g.peer('v0').status().counters
    expect(c.minted).toBe(41)
    expect(c.batches).toBeLessThanOrEqual(3)
    await g.steps(30)
    const st = [...g.peers.values()].map(p => p.status())
    expect(new Set(st.map(x => x.digest)).size).toBe(1)
    expect(st.every(x => x.evaluated === 41)).toBe(true)
  })

  it('a read the store refuses as too old fails alone with SnapshotTooOldError; the peer goes on serving', async () => {
    const g = await TestGroup.create(procedures)
    await committed(g, 'v0', 'before')
    await g.steps(10)
    const store = g.stores.get('v0') as MemoryStore
    const latestValues = store.latestValues.bind(store)
    store.latestValues = async () => { throw new SnapshotTooOldError('the versions this read needs are gone') }
    const out = await g.run(g.peer('v0').read(['x'], { consistency: 'snapshot' }))
    store.latestValues = latestValues
    expect(out).toMatchObject({ done: true, error: { name: 'SnapshotTooOldError' } })
    expect(g.peer('v0').status().failed).toBeUndefined()
    expect(await committed(g, 'v0', 'after')).toMatchObject({ status: 'committed', value: 2 })
  })

  it('replicas compare digest checkpoints: agreement stays quiet, a non-deterministic procedure is reported', async () => {
    const g = await TestGroup.create(procedures, 3, 1)
    for (let i = 0; i < 40; i++) await committed(g, `v${i % 3}`, `h${i}`)
    await g.steps(500)
    expect([...g.peers.values()].map(p => p.status().diverged)).toEqual([undefined, undefined, undefined, undefined])
    const diverged: string[] = []
    for (const p of g.peers.values()) p.onDivergence(d => { diverged.push(`${p.id}:${d.count}`) })
    for (let i = 0; i < 32; i++) {
      const out = await g.run(g.peer('v0').submit({ clientTxnId: `l${i}`, procedure: 'leaky', hash: g.hash('leaky'), args: null }))
      expect(out.done).toBe(true)
    }
    await g.steps(500)
    const reports = [...g.peers.values()].map(p => p.status().diverged)
    expect(reports.every(d => d !== undefined && d.count === 64 && d.mine !== d.theirs)).toBe(true)
    expect(diverged.sort()).toEqual(['o0:64', 'v0:64', 'v1:64', 'v2:64'])
  })

  it('refuses unknown procedures and mismatched hashes at submit, with named errors', async () => {
    const g = await TestGroup.create(procedures)
    const unknown = await g.run(g.peer('v0').submit({ clientTxnId: 'a', procedure: 'nope', hash: 'x', args: null }))
    expect(unknown).toMatchObject({ error: { name: 'UnknownProcedureError' } })
    const mismatch = await g.run(g.peer('v1').submit({ clientTxnId: 'b', procedure: 'inc', hash: 'f00d', args: { k: 'x' } }))
    expect(mismatch).toMatchObject({ error: { name: 'ProcedureHashMismatchError' } })
    expect(g.peer('v0').status().counters.minted ?? 0).toBe(0)
  })

  it('applies a retried clientTxnId once, sequentially and concurrently through two voters', async () => {
    const g = await TestGroup.create(procedures)
    const first = await committed(g, 'v0', 'same')
    const again = await committed(g, 'v2', 'same')
    // Same decision either way; `duplicate` is set when the record was found rather than evaluated just now.
    expect(again).toMatchObject({ status: first.status, ts: first.ts, value: 1 })
    await g.steps(20) // let v1 evaluate it too, so its record is found rather than its evaluation awaited
    const third = await committed(g, 'v1', 'same')
    expect(third).toEqual({ ...first, duplicate: true })
    const p1 = g.peer('v0').submit({ clientTxnId: 'twice', procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' } })
    const p2 = g.peer('v1').submit({ clientTxnId: 'twice', procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' } })
    const [r1, r2] = [await g.run(p1), await g.run(p2)]
    expect(r1).toEqual(r2)
    const read = await g.run(g.peer('v2').read(['x']))
    expect(read).toMatchObject({ value: { values: { x: 2 } } })
  })

  it('a duplicate answers with the first outcome exactly, bytes and aborts included', async () => {
    const g = await TestGroup.create(procedures)
    for (const [procedure, args] of [['bytes', { n: 7 }], ['refuse', null]] as const) {
      const call = async () => await g.run(g.peer('v0').submit({ clientTxnId: `dup-${procedure}`, procedure, hash: g.hash(procedure), args }))
      const first = await call()
      await g.steps(10)
      const again = await call()
      expect(again).toEqual({ done: true, value: { ...(first as { value: object }).value, duplicate: true } })
    }
  })

  it('observers replicate, evaluate, read locally and submit through a voter', async () => {
    const g = await TestGroup.create(procedures, 3, 1)
    const r = await committed(g, 'o0', 'from-observer')
    expect(r).toMatchObject({ status: 'committed', value: 1 })
    const strict = await g.run(g.peer('o0').read(['x']))
    expect(strict).toMatchObject({ value: { values: { x: 1 } } })
    const snap = await g.peer('o0').read(['x'], { consistency: 'snapshot' })
    expect(snap.values).toEqual({ x: 1 })
    expect(g.peer('o0').status().evaluated).toBe(1)
  })

  it('a crashed voter stalls the watermark until it restarts; nothing acknowledged is lost', async () => {
    // The failure detector's bounds at their widest: the crash is shorter than they are.
    const g = await TestGroup.create(procedures, 3, 0, { suspectMinMs: 2_000 })
    await committed(g, 'v0', 'before')
    g.crash('v2')
    await g.steps(10)
    const stalledAt = g.peer('v0').status().watermark
    const pending = g.peer('v0').submit({ clientTxnId: 'during', procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' } }, { timeoutMs: 100_000 })
    const out = await g.run(pending, 200)
    expect(out.done).toBe(false) // durable on v0+v1, but not evaluable while v2's promise is missing
    expect(g.peer('v0').status().watermark).toBe(stalledAt)
    await g.start('v2')
    const after = await g.run(pending)
    expect(after).toMatchObject({ value: { status: 'committed', value: 2 } })
    expect(g.peer('v0').status().watermark > stalledAt).toBe(true)
    await g.steps(30)
    expect(g.peer('v2').status().digest).toBe(g.peer('v0').status().digest)
  })

  it('a coordinator that crashes and restarts never reuses a sequence number or a timestamp', async () => {
    const g = await TestGroup.create(procedures)
    const a = await committed(g, 'v0', 'a')
    await g.steps(5)
    g.crash('v0')
    g.clock.t -= 5_000 // and its clock steps back
    await g.start('v0')
    const b = await committed(g, 'v0', 'b')
    expect(b.ts > a.ts).toBe(true)
    expect(b).toMatchObject({ status: 'committed', value: 2 })
    await g.steps(30)
    expect(new Set([...g.peers.values()].map(p => p.status().digest)).size).toBe(1)
  })

  it('strict reads see every transaction that completed before them; snapshot reads answer at once', async () => {
    const g = await TestGroup.create(procedures)
    for (let i = 0; i < 3; i++) await committed(g, 'v1', `w${i}`, 'y')
    for (const id of ['v0', 'v1', 'v2']) {
      expect(await g.run(g.peer(id).read(['y']))).toMatchObject({ value: { values: { y: 3 } } })
    }
    const snap = await g.peer('v2').read(['y', 'missing'], { consistency: 'snapshot' })
    expect(snap.values.missing).toBeUndefined()
  })

  it('an answer to a timestamp request sent before a restart is never taken for one sent after (a strict read stays strict)', async () => {
    const g = await TestGroup.create(procedures, 3, 1)
    await committed(g, 'v1', 'w0', 'y')
    // o0 asks for a read timestamp; the answer is held back, and o0 restarts before it comes.
    const requests: Array<{ to: string, reqId: string }> = []
    g.filter = (from, to, m) => {
      if (m.t === 'ts-req' && from === 'o0') requests.push({ to, reqId: m.reqId })
      return m.t !== 'ts-rep'
    }
    void g.peer('o0').read(['y']).catch(() => {})
    await g.steps(5)
    const stale = requests[0] as { to: string, reqId: string }
    const early = g.peer(stale.to).status().watermark
    g.crash('o0')
    await g.start('o0')
    g.filter = () => true
    // A transaction completes, then a new strict read starts; the old answer (a timestamp below that transaction) arrives first.
    await committed(g, 'v1', 'w1', 'y')
    const read = g.peer('o0').read(['y'])
    g.peer('o0').receive(stale.to, { t: 'ts-rep', reqId: stale.reqId, ts: early })
    expect(await g.run(read)).toMatchObject({ value: { values: { y: 2 } } })
  })

  it('nothing a peer sends can throw out of receive; junk is counted and dropped', async () => {
    const g = await TestGroup.create(procedures)
    const p = g.peer('v0')
    fc.assert(fc.property(fc.anything({ withTypedArray: true, withMap: true, withSet: true }), junk => { p.receive('evil', junk) }))
    p.receive('evil', { t: 'write', batches: [{ epoch: 0, coordinator: 'v1', seq: 1, thunks: [{ ts: 'zz' }] }], wm: [] })
    p.receive('evil', { t: 'ack', epoch: 0, seqs: [-1], wm: [] })
    expect(p.status().counters.invalid ?? 0).toBeGreaterThan(50)
    // and it still serves
    expect(await committed(g, 'v0', 'still-alive')).toMatchObject({ status: 'committed' })
  })

  it('refuses batches holding a timestamp whose tag is not their coordinator’s, and batches that do not match their thunks', async () => {
    const g = await TestGroup.create(procedures)
    const thunk = (ts: string, index: number) => ({ ts, epoch: 0, coordinator: 'v1', seq: 1, index, procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' }, reads: ['x'], writes: ['x'], clientTxnId: `f${index}`, firstAt: 1_000_000 })
    const own = '0000000f4240' + peerTag('v1') + '00000000'
    const forged = '0000000f4241' + '0'.repeat(16) + '00000000'
    // The second thunk's timestamp belongs to no one: the whole batch is refused.
    g.peer('v0').receive('v1', { t: 'write', batches: [{ epoch: 0, coordinator: 'v1', seq: 1, thunks: [thunk(own, 0), thunk(forged, 1)] }], wm: [] })
    expect(g.peer('v0').status().counters['batch-refused']).toBe(1)
    // Out of order, misnumbered, or claiming another batch: invalid before it reaches the protocol.
    const invalid = g.peer('v0').status().counters.invalid ?? 0
    const later = '0000000f4242' + peerTag('v1') + '00000000'
    g.peer('v0').receive('v1', { t: 'write', batches: [{ epoch: 0, coordinator: 'v1', seq: 1, thunks: [thunk(later, 0), thunk(own, 1)] }], wm: [] })
    g.peer('v0').receive('v1', { t: 'write', batches: [{ epoch: 0, coordinator: 'v1', seq: 1, thunks: [thunk(own, 1)] }], wm: [] })
    g.peer('v0').receive('v1', { t: 'write', batches: [{ epoch: 0, coordinator: 'v1', seq: 2, thunks: [thunk(own, 0)] }], wm: [] })
    g.peer('v0').receive('v1', { t: 'write', batches: [{ epoch: 0, coordinator: 'v1', seq: 1, thunks: [] }], wm: [] })
    expect(g.peer('v0').status().counters.invalid).toBe(invalid + 4)
    expect(g.peer('v0').status().unevaluated).toBe(0)
  })

  it('a peer speaks only for itself: no non-voter write, no relayed or forged watermark entry is taken', async () => {
    const g = await TestGroup.create(procedures)
    const v0 = g.peer('v0')
    const before = v0.status().watermark
    const tagOfV1 = '0000000f4240' + peerTag('v1') + '00000000'
    const thunk = { ts: tagOfV1, epoch: 0, coordinator: 'v1', seq: 1, index: 0, procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' }, reads: ['x'], writes: ['x'], clientTxnId: 'f', firstAt: 1_000_000 }
    const batch = { epoch: 0, coordinator: 'v1', seq: 1, thunks: [thunk] }
    const far = { voter: 'v1', epoch: 0, svw: 'f'.repeat(12) + peerTag('v1') + '00000000', count: 0 }
    // an outsider claiming v1's thunk and v1's promise; a voter relaying v1's entry; v2 writing v1's thunk
    v0.receive('outsider', { t: 'write', batches: [batch], wm: [far] })
    v0.receive('outsider', { t: 'wm', wm: [far] })
    v0.receive('v2', { t: 'wm', wm: [far] })
    v0.receive('v2', { t: 'write', batches: [batch], wm: [] })
    const c = v0.status().counters
    expect(c['write-from-non-voter']).toBe(1)
    expect(c['wm-not-own-refused']).toBe(2)
    expect(c['write-not-own-refused']).toBe(1)
    expect(v0.status().watermark).toBe(before)
    expect(v0.status().unevaluated).toBe(0)
    // the group still commits
    expect(await committed(g, 'v0', 'after-forgeries')).toMatchObject({ status: 'committed' })
  })

  it('reconnaissance: a dependent transaction retries when its reads changed, and gives up after its bound', async () => {
    const g = await TestGroup.create(procedures)
    let reads = 0
    const db = {
      read: async (keys: readonly string[], o?: { consistency?: 'strict' | 'snapshot' }) => {
        const r = await g.peer('v0').read(keys, o)
        // Between the first reconnaissance read and its transaction, someone moves the pointer.
        if (++reads === 1) await g.run(g.peer('v1').submit({ clientTxnId: 'p2', procedure: 'setPtr', hash: g.hash('setPtr'), args: { to: 'c' } }))
        return r
      },
      submit: async (req: Parameters<ReturnType<TestGroup['peer']>['submit']>[0]) => {
        const out = await g.run(g.peer('v0').submit(req))
        if (!out.done || !('value' in out)) throw new Error('no result')
        return out.value
      }
    }
    await g.run(g.peer('v0').submit({ clientTxnId: 'p1', procedure: 'setPtr', hash: g.hash('setPtr'), args: { to: 'b' } }))
    await g.steps(20)
    let attempts = 0
    const r = await reconnoiter(db, {
      keys: ['ptr'],
      plan: (values, attempt) => {
        attempts = attempt
        return { procedure: 'moveToPointer', hash: g.hash('moveToPointer'), args: { from: 'a', expected: values.ptr as string } }
      },
      clientTxnId: attempt => `move-${attempt}`
    })
    expect(attempts).toBe(2)
    expect(r).toMatchObject({ status: 'committed' })
    await expect(reconnoiter(db, {
      keys: ['ptr'],
      plan: () => ({ procedure: 'moveToPointer', hash: g.hash('moveToPointer'), args: { from: 'a', expected: 'never' } }),
      clientTxnId: attempt => `hopeless-${attempt}`,
      maxAttempts: 3
    })).rejects.toMatchObject({ name: 'ReconnaissanceFailedError' })
  })
})

describe('snapshot transfer', () => {
  it('a replica restored from a snapshot plus the thunks after it reaches the digest of one that replayed everything', async () => {
    const g = await TestGroup.create(procedures, 3, 0)
    for (let i = 0; i < 12; i++) await committed(g, `v${i % 3}`, `a${i}`, `k${i % 4}`)
    await g.steps(20)
    const snap = await g.peer('v1').exportSnapshot()
    expect(snap.entries.length).toBe(4)
    // more history after the snapshot, which the new replica must fetch as thunks
    for (let i = 0; i < 6; i++) await committed(g, `v${i % 3}`, `b${i}`, `k${i % 4}`)
    // The voters forget the thunks the snapshot covers: replaying from scratch is impossible now.
    const cursor = snap.meta.find(([n]) => n === 'cursor')?.[1] as { frontier: Timestamp } | undefined
    const at = cursor?.frontier
    expect(at).toBe(snap.at)
    for (const v of ['v0', 'v1', 'v2']) expect((await g.stores.get(v)?.gc(at ?? snap.at))?.batchesRemoved).toBe(12)
    const { MemoryStore } = await import('../src/index.js')
    const fresh = new MemoryStore({ journal: true })
    await fresh.importSnapshot(snap)
    g.stores.set('o9', fresh)
    await g.start('o9')
    for (let i = 0; i < 3; i++) await committed(g, 'v0', `c${i}`, `k${i}`)
    await g.steps(60)
    const restored = g.peer('o9').status()
    const replayed = g.peer('v2').status()
    expect(restored.lastEvaluated).toBe(replayed.lastEvaluated)
    expect(restored.digest).toBe(replayed.digest)
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v2').snapshot())
    expect(restored.evaluated).toBe(21)
  })
})

describe('bounded history', () => {
  /** Three voters that wrote `values` values of 100 kB and collected their history, and a new replica o9 (the test's filter decides what it gets). */
  async function groupWithLateReplica (values: number, late: MemoryStore = new MemoryStore({ journal: true })): Promise<TestGroup> {
    const g = await TestGroup.create(procedures, 3, 0, { retainMs: 50, gcIntervalMs: 20 })
    for (let i = 0; i < values; i++) {
      const out = await g.run(g.peer(`v${i % 3}`).submit({ clientTxnId: `f${i}`, procedure: 'fill', hash: g.hash('fill'), args: { k: `big${i}`, n: 100_000 } }))
      expect(out).toMatchObject({ done: true, value: { status: 'committed' } })
    }
    await g.steps(200)
    g.stores.set('o9', late)
    await g.start('o9')
    return g
  }

  it('a retry past the group\'s txnRetentionMs is refused as expired on every replica, and exactly-once records behind it are collected', async () => {
    const g = await TestGroup.create(procedures, 3, 1, { retainMs: 50, gcIntervalMs: 20 }, { txnRetentionMs: 300, txnSkewMs: 100 })
    const submit = (via: string, clientTxnId: string, firstAt: number) => g.run(g.peer(via).submit({ clientTxnId, procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' }, firstAt }))
    const t0 = g.clock.now()
    expect(await submit('v0', 'once', t0)).toMatchObject({ done: true, value: { status: 'committed', value: 1 } })
    await g.steps(10)
    // Within the retention, through another voter: a duplicate with the first answer.
    expect(await submit('v1', 'once', t0)).toMatchObject({ done: true, value: { status: 'committed', value: 1, duplicate: true } })
    // A second passes: every replica collects the record (its line lies retention + skew below its GC point).
    await g.steps(200)
    for (const id of ['v0', 'v1', 'v2', 'o0']) {
      expect({ id, record: await g.stores.get(id)?.txnRecords(['once']) }).toEqual({ id, record: [undefined] })
      expect(g.peer(id).status().counters['gc-records-removed']).toBeGreaterThan(0)
    }
    // The retry now carries a first attempt too old to vouch for: refused, the same everywhere, no effect.
    const late = await submit('v2', 'once', t0)
    expect(late).toMatchObject({ done: true, value: { status: 'aborted', error: 'ExpiredTransactionError' } })
    await g.steps(20)
    for (const id of ['v0', 'v1', 'v2', 'o0']) expect({ id, x: await g.peer(id).read(['x'], { consistency: 'snapshot' }).then(r => r.values.x) }).toEqual({ id, x: 1 })
    expect(new Set(['v0', 'v1', 'v2', 'o0'].map(id => g.peer(id).status().digest)).size).toBe(1)
    // A client whose clock runs ahead of the voters' by more than txnSkewMs is refused before it gets a timestamp.
    const ahead = await submit('o0', 'ahead', g.clock.now() + 1_000)
    expect(ahead).toMatchObject({ done: true, error: { name: 'ClockSkewError' } })
  })

  it('every replica collects below the voters\' durable frontier; a replica that starts later catches up by snapshot over the wire', async () => {
    const g = await TestGroup.create(procedures, 3, 1, { retainMs: 50, gcIntervalMs: 20 })
    const first = await committed(g, 'v0', 'a0', 'k0')
    for (let i = 1; i < 30; i++) await committed(g, `v${i % 3}`, `a${i}`, `k${i % 4}`)
    // Time passes beyond the retention window: durable frontiers are reported, GC steps run.
    await g.steps(200)
    for (const id of ['v0', 'v1', 'v2', 'o0']) {
      const st = g.peer(id).status()
      // Every batch of the history lies below the horizon now (the last commit was 1 s ago).
      expect({ id, gc: (st.counters['gc-steps'] ?? 0) > 0, batches: g.stores.get(id)?.stats().batches }).toEqual({ id, gc: true, batches: 0 })
    }
    // A new replica: the batches it would replay are gone everywhere, so it must take a snapshot.
    g.stores.set('o9', new MemoryStore({ journal: true }))
    await g.start('o9')
    // Its sync status says what it is doing: a snapshot, then live.
    // And while it fetches the snapshot it asks for no gap below it (every answer would be `gone`).
    const phases = new Set<string>()
    let gapsWhileFetching = 0
    for (let i = 0; i < 100; i++) {
      const before = g.peer('o9').status()
      await g.step()
      const after = g.peer('o9').status()
      phases.add(after.sync.phase)
      if (before.snapshotting && after.snapshotting) gapsWhileFetching += (after.counters['gap-req'] ?? 0) - (before.counters['gap-req'] ?? 0)
    }
    expect(phases.has('snapshot')).toBe(true)
    expect(gapsWhileFetching).toBe(0)
    const sync = g.peer('o9').status().sync
    expect(sync).toMatchObject({ phase: 'live' })
    expect(sync.received).toBe(sync.total)
    expect(g.peer('o9').status().counters['snapshots-installed']).toBe(1)
    expect(g.peer('o9').status().counters['snapshot-refused']).toBeUndefined()
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v1').snapshot())
    // And it goes on from the snapshot's cursor with the thunks after it.
    for (let i = 0; i < 6; i++) await committed(g, `v${i % 3}`, `b${i}`, `k${i % 4}`)
    await g.steps(40)
    const restored = g.peer('o9').status()
    const replayed = g.peer('v2').status()
    expect(restored.evaluated).toBe(36)
    expect(restored.lastEvaluated).toBe(replayed.lastEvaluated)
    expect(restored.digest).toBe(replayed.digest)
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v2').snapshot())
    // Its store refuses reads older than the snapshot rather than answer them from it.
    await expect(g.stores.get('o9')?.latest('k0', timestampSuccessor(first.ts))).rejects.toBeInstanceOf(SnapshotTooOldError)
  })

  it('a strict read whose timestamp a snapshot install jumps over is answered at the new frontier, not refused', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { retainMs: 50, gcIntervalMs: 20 })
    for (let i = 0; i < 12; i++) await committed(g, `v${i % 3}`, `a${i}`, `k${i % 3}`)
    await g.steps(200)
    g.stores.set('o9', new MemoryStore({ journal: true }))
    await g.start('o9')
    // The snapshot is held back until the voters have gone past the read's timestamp.
    let hold = true
    g.filter = (_from, _to, m) => !(hold && m.t === 'snap-req')
    const read = g.peer('o9').read(['k1'])
    await g.steps(150)
    hold = false
    const out = await g.run(read)
    expect(out).toMatchObject({ done: true, value: { values: { k1: 4 } } })
    expect(g.peer('o9').status().counters['snapshots-installed']).toBe(1)
  })

  it('a voter that declines to export says so (snap-no): the replica asks the next voter after a second, not after the first chunk\'s wait', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { retainMs: 50, gcIntervalMs: 20 })
    for (let i = 0; i < 12; i++) await committed(g, `v${i % 3}`, `a${i}`, `k${i % 3}`)
    await g.steps(200)
    g.stores.set('o9', new MemoryStore({ journal: true }))
    const asks: Array<{ to: string, id: string, at: number }> = []
    g.filter = (from, to, m) => {
      if (from !== 'o9' || m.t !== 'snap-req' || m.chunk !== 0) return true
      asks.push({ to, id: m.id, at: g.clock.t })
      // The first voter asked declines (as one healing would); a stranger's decline is ignored.
      if (asks.length > 1) return true
      const other = ['v0', 'v1', 'v2'].find(v => v !== to) as string
      g.peer('o9').receive(other, { t: 'snap-no', id: m.id, why: 'healing' })
      g.peer('o9').receive(to, { t: 'snap-no', id: m.id, why: 'healing' })
      return false
    }
    await g.start('o9')
    const read = g.peer('o9').read(['k1'])
    expect(await g.run(read)).toMatchObject({ done: true, value: { values: { k1: 4 } } })
    expect(asks.length).toBeGreaterThanOrEqual(2)
    const [first, second] = asks as [typeof asks[0], typeof asks[0]]
    expect(second.to).not.toBe(first.to)
    expect(second.at - first.at).toBeGreaterThanOrEqual(1_000)
    expect(second.at - first.at).toBeLessThan(1_500)
    expect(g.peer('o9').status().counters['snapshot-declined-heard']).toBe(1)
  })

  it('a snapshot whose source forged a consistent state (entries, digest and cursor agree) is outvoted by the other voters and fetched from another', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { retainMs: 50, gcIntervalMs: 20 })
    for (let i = 0; i < 12; i++) await committed(g, `v${i % 3}`, `a${i}`, `k${i}`)
    await g.steps(200)
    g.stores.set('o9', new MemoryStore({ journal: true }))
    await g.start('o9')
    let forger: string | undefined
    const sources: string[] = []
    g.filter = (from, _to, m) => {
      if (m.t !== 'snap-chunk') return true
      sources.push(from)
      forger ??= from
      if (from !== forger) return true
      // k0 says 999 in every chunk of the forger's, and both digests are made to match it.
      const w = m as unknown as { entries: Array<[string, Value]>, digest: string, cursor: { state: [number, number] } }
      const i = w.entries.findIndex(([k]) => k === 'k0')
      if (i < 0) return true
      const old = (w.entries[i] as [string, Value])[1]
      w.entries[i] = ['k0', 999]
      w.digest = StateDigest.parse(w.digest).dropEntry('k0', old).entry('k0', 999).value
      w.cursor.state = StateDigest.restore(w.cursor.state).dropEntry('k0', old).entry('k0', 999).lanes
      return true
    }
    await g.steps(400)
    const st = g.peer('o9').status()
    expect(st.counters['snapshot-mismatch']).toBeUndefined()
    expect(st.counters['snapshot-outvoted']).toBe(1)
    expect(st.counters['snapshots-installed']).toBe(1)
    expect(new Set(sources).size).toBe(2)
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v1').snapshot())
    expect((await g.peer('o9').read(['k0'], { consistency: 'snapshot' })).values.k0).not.toBe(999)
  })

  it('a snapshot whose entries were changed on the way is refused (digest mismatch) and fetched from another voter', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { retainMs: 50, gcIntervalMs: 20 })
    for (let i = 0; i < 12; i++) await committed(g, `v${i % 3}`, `a${i}`, `k${i}`)
    await g.steps(200)
    g.stores.set('o9', new MemoryStore({ journal: true }))
    await g.start('o9')
    const sources: string[] = []
    g.filter = (from, _to, m) => {
      if (m.t !== 'snap-chunk') return true
      sources.push(from)
      // The first snapshot's first value arrives changed.
      if (sources.length === 1) (m.entries as Array<[string, unknown]>)[0] = [(m.entries[0] as [string, unknown])[0], 999]
      return true
    }
    await g.steps(600)
    const st = g.peer('o9').status()
    expect(st.counters['snapshot-mismatch']).toBe(1)
    expect(st.counters['snapshots-installed']).toBe(1)
    expect(new Set(sources).size).toBe(2)
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v0').snapshot())
  })

  it('a replica planted with a wrong value diverges, sees a majority of the voters disagree, holds its reads and heals by snapshot', async () => {
    const g = await TestGroup.create(procedures, 3, 1)
    for (let i = 0; i < 10; i++) await committed(g, `v${i % 3}`, `a${i}`)
    await g.steps(20)
    // Behind the replica's back, its store says x is 999 as of just after what it evaluated.
    const planted = g.stores.get('o0') as MemoryStore
    await planted.write({ settle: [{ ts: timestampSuccessor(g.peer('o0').status().lastEvaluated), outcome: { status: 'committed', value: null }, writes: [['x', 999]] }] })
    // A restart, so nothing remembered in memory hides what the store now says.
    g.crash('o0')
    await g.start('o0')
    for (let i = 10; i < 40; i++) await committed(g, `v${i % 3}`, `a${i}`)
    // Its results differ from the 32nd thunk on: at the next digest checkpoint the voters outvote it.
    for (let i = 0; i < 600 && (g.peer('o0').status().counters['heal-started'] ?? 0) === 0; i++) await g.step()
    expect(g.peer('o0').status().counters['heal-started']).toBe(1)
    // Until it healed it answers no read (it would come from the wrong state): a read waits for the healed state.
    let answered: unknown
    void g.peer('o0').read(['x'], { consistency: 'snapshot' }).then(r => { answered = r.values.x })
    await g.step()
    expect(answered).toBeUndefined()
    await g.steps(300)
    expect(answered).toBe(40)
    const st = g.peer('o0').status()
    expect(st.counters.healed).toBe(1)
    expect(st.diverged).toBeUndefined()
    expect(await g.peer('o0').snapshot()).toEqual(await g.peer('v0').snapshot())
    expect(st.digest).toBe(g.peer('v0').status().digest)
    // It serves again, with the group's values.
    const read = await g.run(g.peer('o0').read(['x']))
    expect(read).toMatchObject({ done: true, value: { values: { x: 40 } } })
  })

  it('a store changed while its replica was down is found out when it opens (state digest) and healed before it serves', async () => {
    const g = await TestGroup.create(procedures, 3, 1)
    for (let i = 0; i < 10; i++) await committed(g, `v${i % 3}`, `a${i}`)
    await g.steps(20)
    g.crash('o0')
    // A key that was never written appears below the frontier the store's cursor is at.
    const damaged = g.stores.get('o0') as MemoryStore
    const cursor = damaged.getMetaSync('cursor') as { last: Timestamp }
    await damaged.write({ settle: [{ ts: timestampPredecessor(cursor.last), outcome: { status: 'committed', value: null }, writes: [['ghost', 1]] }] })
    await g.start('o0')
    const st = g.peer('o0').status()
    expect(st.counters['store-damaged']).toBe(1)
    let answered: unknown
    void g.peer('o0').read(['x'], { consistency: 'snapshot' }).then(r => { answered = r.values.x })
    await g.step()
    expect(answered).toBeUndefined()
    for (let i = 10; i < 14; i++) await committed(g, `v${i % 3}`, `a${i}`)
    await g.steps(300)
    expect(g.peer('o0').status().counters.healed).toBe(1)
    expect(answered).toBeGreaterThanOrEqual(10)
    expect(await g.peer('o0').snapshot()).toEqual(await g.peer('v0').snapshot())
    expect(g.peer('o0').status().digest).toBe(g.peer('v0').status().digest)
    expect(await g.run(g.peer('o0').read(['x', 'ghost']))).toMatchObject({ done: true, value: { values: { x: 14 } } })
  })

  it('a snapshot of several chunks is streamed two chunks at a time once the first opened the export, the digest with the last', async () => {
    // 48 values of 100 kB: three chunks of at most 2 MiB.
    const g = await groupWithLateReplica(48)
    const events: string[] = []
    g.filter = (from, to, m) => {
      if (m.t === 'snap-req' && from === 'o9') events.push(`req ${m.chunk}`)
      if (m.t === 'snap-chunk' && to === 'o9') events.push(`chunk ${m.chunk}${m.last ? ' last' : ''}${m.digest !== undefined ? ' digest' : ''}`)
      return true
    }
    await g.steps(400)
    expect(g.peer('o9').status().counters['snapshots-installed']).toBe(1)
    expect(events.filter(e => e.startsWith('chunk'))).toEqual(['chunk 0', 'chunk 1', 'chunk 2 last digest'])
    // Only the first chunk was asked for alone; the third was asked for before the second arrived.
    expect(events.indexOf('req 1')).toBeGreaterThan(events.indexOf('chunk 0'))
    expect(events.indexOf('req 2')).toBeLessThan(events.indexOf('chunk 1'))
    expect(g.peer('v0').status().counters['snapshot-chunks-served']).toBe(3)
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v0').snapshot())
  })

  it('a replica whose store stages slowly asks for no chunk more than two windows past those staged, then completes', async () => {
    // 96 values of 100 kB: five chunks. The late replica's store stages nothing until the gate opens.
    let open = (): void => {}
    const gate = new Promise<void>(resolve => { open = resolve })
    class GatedStore extends MemoryStore {
      private writer: CollectingWriter | undefined
      staged = 0
      async beginStaged (at: Timestamp): Promise<void> { this.writer = new CollectingWriter(at) }
      async stagePart (items: SnapshotItems): Promise<StagedDigest> {
        await gate
        this.staged++
        return (this.writer as CollectingWriter).add(items)
      }

      async commitStaged (meta: ReadonlyArray<readonly [string, Value]>): Promise<void> { await this.importSnapshot((this.writer as CollectingWriter).snapshot(meta)) }
      async dropStaged (): Promise<void> { this.writer = undefined }
    }
    const g = await groupWithLateReplica(96, new GatedStore({ journal: true }))
    const asked: number[] = []
    g.filter = (from, _to, m) => {
      if (m.t === 'snap-req' && from === 'o9') asked.push(m.chunk)
      return true
    }
    await g.steps(300)
    // Chunks 0 to 3 (SNAPSHOT_WINDOW 2: staged + 2 × 2 - 1), none staged, nothing installed.
    expect(Math.max(...asked)).toBe(3)
    expect(g.peer('o9').status().counters['snapshots-installed']).toBeUndefined()
    open()
    await g.steps(400)
    expect((g.stores.get('o9') as GatedStore).staged).toBe(5)
    expect(g.peer('o9').status().counters['snapshots-installed']).toBe(1)
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v0').snapshot())
  })

  it('a replica behind the horizon that loses a chunk in the middle of a stream resumes the same export', async () => {
    // 24 values of 100 kB: a snapshot of two chunks (SNAPSHOT_CHUNK_BYTES is 2 MiB).
    const g = await groupWithLateReplica(24)
    // The second chunk is lost on the way: the request for it is sent again and the same export answers.
    const chunks: Array<{ from: string, chunk: number }> = []
    let dropped = 0
    g.filter = (from, _to, m) => {
      if (m.t !== 'snap-chunk') return true
      chunks.push({ from, chunk: m.chunk })
      if (m.chunk > 0 && dropped === 0) { dropped++; return false }
      return true
    }
    await g.steps(600)
    const st = g.peer('o9').status()
    expect(dropped).toBe(1)
    expect(st.counters['snapshot-retry']).toBe(1)
    expect(st.counters['snapshots-installed']).toBe(1)
    // One source, one export: the first chunk once, the second twice.
    expect(new Set(chunks.map(c => c.from)).size).toBe(1)
    expect(chunks.map(c => c.chunk)).toEqual([0, 1, 1])
    expect(await g.peer('o9').snapshot()).toEqual(await g.peer('v0').snapshot())
  })
})

describe('remote refusals', () => {
  it('a client that submits over the wire gets the named refusal for its own clientTxnId', async () => {
    const g = await TestGroup.create(procedures)
    const replies: unknown[] = []
    const client = 'c0'
    g.peers.set(client, { receive: (_from: string, m: unknown) => { replies.push(m) }, tick: () => {} } as unknown as ReturnType<TestGroup['peer']>)
    g.peer('v0').receive(client, { t: 'submit', req: { clientTxnId: 'r1', procedure: 'nope', hash: 'x', args: null }, replyTo: client })
    await g.steps(3)
    expect(replies).toEqual([{ t: 'submit-rep', clientTxnId: 'r1', error: expect.objectContaining({ name: 'UnknownProcedureError' }) }])
  })
})
