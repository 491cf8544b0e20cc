import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Hasher, MemoryStore, TS_ZERO, createRegistry, makeTimestamp, partitionOf, peerTag, storeApplier, type Cursor, type ForwardedReads, type RunApplier, type RunRules, type StoreBatch, type Thunk, type Tx } from '../src/index.js'
import { FORWARD } from '../src/settle.js'

const procedures = {
  move: {
    keys: (a: { from: string, to: string, n: number }) => ({ reads: [a.from, a.to], writes: [a.from, a.to] }),
    run: (tx: Tx, a: { from: string, to: string, n: number }) => {
      const f = (tx.get(a.from) as number | undefined) ?? 10
      if (f < a.n) return tx.abort('short')
      tx.put(a.from, f - a.n)
      tx.put(a.to, ((tx.get(a.to) as number | undefined) ?? 10) + a.n)
      return f - a.n
    }
  },
  wipe: {
    keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { tx.delete(a.k); return null }
  }
}
const registry = createRegistry(procedures)
const tag = peerTag('c')
const rules: RunRules = { txnRetentionMs: 60_000, txnSkewMs: 1_000, groupId: 'g', signedCalls: false, revoked: [] }

describe('storeApplier', () => {
  it('with its cache of newest values gives the same results, digests and state as without', async () => {
    const op = fc.oneof(
      fc.record({ p: fc.constant('move' as const), from: fc.integer({ min: 0, max: 5 }), to: fc.integer({ min: 0, max: 5 }), n: fc.integer({ min: 1, max: 15 }) }),
      fc.record({ p: fc.constant('wipe' as const), k: fc.integer({ min: 0, max: 5 }) })
    )
    await fc.assert(fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 12 }), async (runs, cacheKeys) => {
      const stores = [new MemoryStore(), new MemoryStore()]
      const appliers = [storeApplier({ store: stores[0] as MemoryStore, registry, cacheKeys }), storeApplier({ store: stores[1] as MemoryStore, registry, cacheKeys: 0 })]
      const bases: Cursor[] = [0, 1].map(() => ({ frontier: TS_ZERO, last: TS_ZERO, count: 0, digest: new Hasher().state, evalNext: {} }))
      let seq = 0
      for (const ops of runs) {
        const run: Thunk[] = ops.map(o => {
          seq++
          const args = o.p === 'move' ? { from: `k${o.from}`, to: `k${o.to}`, n: o.n } : { k: `k${o.k}` }
          const keys = o.p === 'move' ? procedures.move.keys(args as { from: string, to: string, n: number }) : procedures.wipe.keys(args as { k: string })
          return { ts: makeTimestamp(1_000 + seq, tag, seq), epoch: 0, coordinator: 'c', seq, index: 0, procedure: o.p, hash: registry.procedures.get(o.p)?.hash ?? '', args, reads: keys.reads, writes: keys.writes, clientTxnId: `t${seq}`, firstAt: 1_000 + seq }
        })
        const out = await Promise.all([0, 1].map(async i => (appliers[i] as RunApplier)(run, bases[i] as Cursor, rules)))
        expect(out[0]?.results).toEqual(out[1]?.results)
        expect(out[0]?.cursor.digest).toEqual(out[1]?.cursor.digest)
        bases[0] = out[0]?.cursor as Cursor
        bases[1] = out[1]?.cursor as Cursor
      }
      const last = bases[0]?.frontier ?? TS_ZERO
      expect(await stores[0]?.entries(last)).toEqual(await stores[1]?.entries(last))
    }), { numRuns: 60 })
  })

  it('refuses a retry past the retention the same way whether or not the replica still holds its record', async () => {
    const short: RunRules = { ...rules, txnRetentionMs: 1_000, txnSkewMs: 100 }
    const base: Cursor = { frontier: TS_ZERO, last: TS_ZERO, count: 0, digest: new Hasher().state, evalNext: {} }
    const move = (seq: number, ms: number, firstAt: number, id = 'same'): Thunk => ({
      ts: makeTimestamp(ms, tag, 0), epoch: 0, coordinator: 'c', seq, index: 0, procedure: 'move', hash: registry.procedures.get('move')?.hash ?? '',
      args: { from: 'a', to: 'b', n: 1 }, reads: ['a', 'b'], writes: ['a', 'b'], clientTxnId: id, firstAt
    })
    const kept = new MemoryStore()
    const collected = new MemoryStore()
    const results = []
    for (const store of [kept, collected]) {
      const apply = storeApplier({ store, registry, cacheKeys: 0 })
      const first = await apply([move(1, 10_000, 9_990)], base, short)
      expect(first.results[0]).toMatchObject({ status: 'committed', value: 9 })
      // Within the retention: a duplicate, answered with the first outcome.
      const within = await apply([move(2, 10_900, 9_990)], first.cursor, short)
      expect(within.results[0]).toMatchObject({ status: 'committed', value: 9, duplicate: true })
      const removed = store === collected ? store.gcSync(makeTimestamp(12_000, tag, 0), makeTimestamp(10_500, tag, 0)).recordsRemoved : 0
      expect(removed).toBe(store === collected ? 1 : 0)
      // Past it: aborted, no effect, no record, whatever the store still holds.
      const late = await apply([move(3, 11_000, 9_990)], within.cursor, short)
      results.push(late.results[0])
      expect(late.results[0]).toMatchObject({ status: 'aborted', error: 'ExpiredTransactionError' })
      expect(await store.latestValues(['a', 'b'], makeTimestamp(20_000, tag, 0))).toEqual([9, 11])
      // A firstAt further ahead of the timestamp than the skew: aborted too (a coordinator would have refused it).
      const ahead = await apply([move(4, 11_100, 11_201, 'ahead')], late.cursor, short)
      expect(ahead.results[0]).toMatchObject({ status: 'aborted', error: 'ClockSkewError' })
      expect(await store.txnRecords(['ahead'])).toEqual([undefined])
    }
    expect(results[0]).toEqual(results[1])
  })

  it('hands a partitioned run\'s forwarded reads over before it writes the run (they wait on no store write)', async () => {
    const spec = { count: 2, depth: 1 }
    // Keys of the two partitions: 'a' held here, the other one not.
    const here = partitionOf('a', spec)
    const there = ['b', 'c', 'd', 'e', 'f'].find(k => partitionOf(k, spec) !== here) as string
    const store = new MemoryStore()
    let release: () => void = () => {}
    let writes = 0
    const write = store.write.bind(store)
    // A store whose write lands only when released.
    store.write = async (batch: StoreBatch) => { writes++; await new Promise<void>(resolve => { release = resolve }); await write(batch) }
    const apply = storeApplier({ store, registry, cacheKeys: 0 })
    const thunk: Thunk = {
      ts: makeTimestamp(10_000, tag, 0), epoch: 0, coordinator: 'c', seq: 1, index: 0, procedure: 'move', hash: registry.procedures.get('move')?.hash ?? '',
      args: { from: 'a', to: there, n: 1 }, reads: ['a', there], writes: ['a', there], clientTxnId: 'x', firstAt: 10_000
    }
    const base: Cursor = { frontier: TS_ZERO, last: TS_ZERO, count: 0, digest: new Hasher().state, evalNext: {} }
    let early: readonly ForwardedReads[] | undefined
    let settled = false
    // Only forwarded from here (its other replicas evaluate it): this replica sends its reads of 'a'.
    const done = apply([thunk], base, { ...rules, partitions: spec }, { holding: [here], modes: [FORWARD], remote: [undefined] }, f => { early = f }).then(r => { settled = true; return r })
    await expect.poll(() => writes).toBe(1)
    expect(settled).toBe(false)
    expect(early).toEqual([{ ts: thunk.ts, parts: [here], values: [], ranges: [] }])
    release()
    const applied = await done
    expect(applied.forwards).toEqual(early)
  })
})
