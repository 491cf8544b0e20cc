import { describe, expect, it } from 'vitest'
import { MemoryStore, TS_INFINITY, makeTimestamp, peerTag, type Batch, type Thunk } from '../src/index.js'

const tag = peerTag('v0')
const ts = (n: number) => makeTimestamp(1000 + n, tag, 0)
const thunk = (n: number, seq = n, index = 0): Thunk => ({ ts: ts(n), epoch: 0, coordinator: 'v0', seq, index, procedure: 'p', hash: 'h', args: null, reads: [], writes: ['k'], clientTxnId: `c${n}`, firstAt: 1000 + n })
/** Batch `n` holding the one thunk at `n`. */
const batch = (n: number): Batch => ({ epoch: 0, coordinator: 'v0', seq: n, thunks: [thunk(n)] })
const settle = (n: number, value: number) => ({ ts: ts(n), outcome: { status: 'committed' as const, value: null }, writes: [['k', value]] as Array<[string, number]> })

describe('MemoryStore', () => {
  it('answers the newest version strictly below a timestamp', async () => {
    const s = new MemoryStore()
    await s.write({ batches: [batch(1), batch(3), batch(2)] })
    await s.write({ settle: [settle(1, 10), settle(3, 30)] })
    await s.write({ settle: [settle(2, 20)] })
    expect(await s.latest('k', ts(1))).toBeUndefined()
    expect((await s.latest('k', ts(2)))?.value).toBe(10)
    expect((await s.latest('k', ts(3)))?.value).toBe(20)
    expect((await s.latest('k', TS_INFINITY))?.value).toBe(30)
    expect((await s.batchRange('v0', 0, 2, 3)).batches.map(b => b.seq)).toEqual([2, 3])
  })

  it('a crash keeps strict batches and the relaxed ones before them, and loses the relaxed tail whole', async () => {
    const s = new MemoryStore({ journal: true })
    await s.write({ batches: [batch(1), batch(2), batch(3)], durability: 'strict' })
    await s.write({ settle: [settle(1, 10)], meta: [['cursor', 1]], durability: 'relaxed' })
    await s.write({ meta: [['lease', 5]], durability: 'strict' })
    await s.write({ settle: [settle(2, 20)], meta: [['cursor', 2]], durability: 'relaxed' })
    const r = s.crashAndRecover()
    expect(await r.getMeta('cursor')).toBe(1)
    expect(await r.getMeta('lease')).toBe(5)
    expect((await r.latest('k', TS_INFINITY))?.value).toBe(10)
    expect(await r.outcome(ts(1))).toEqual({ status: 'committed', value: null })
    expect(await r.outcome(ts(2))).toBeUndefined()
    expect((await r.batchRange('v0', 0, 1, Infinity)).batches.map(b => b.seq)).toEqual([1, 2, 3])
  })

  it('a write in flight when the peer crashes never lands and never answers', async () => {
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const s = new MemoryStore({ journal: true, delay: () => gate })
    let answered = false
    void s.write({ batches: [batch(1)] }).then(() => { answered = true })
    const r = s.crashAndRecover()
    release()
    await new Promise(resolve => { setImmediate(resolve) })
    expect(answered).toBe(false)
    expect((await r.batchRange('v0', 0, 1, Infinity)).batches).toEqual([])
    expect((await s.batchRange('v0', 0, 1, Infinity)).batches).toEqual([])
  })

  it('copies values in and out', async () => {
    const s = new MemoryStore()
    const v = { n: [1] }
    await s.write({ settle: [{ ts: ts(1), outcome: { status: 'committed', value: null }, writes: [['k', v]] }] })
    v.n.push(2)
    const got = (await s.latest('k', TS_INFINITY))?.value as { n: number[] }
    expect(got).toEqual({ n: [1] })
    got.n.push(3)
    expect((await s.latest('k', TS_INFINITY))?.value).toEqual({ n: [1] })
  })
})

describe('MemoryStore GC at scale', () => {
  it('after 100,000 transactions on 1,000 keys it holds O(keys × retained versions), not O(transactions)', async () => {
    const s = new MemoryStore()
    const keys = 1000
    const txns = 100_000
    const retain = 200 // transactions kept above the horizon
    for (let n = 1; n <= txns; n += 500) {
      const thunks: Thunk[] = []
      const settled = []
      for (let i = n; i < n + 500; i++) {
        const t = { ...thunk(i, (n - 1) / 50 + Math.floor((i - n) / 50) + 1, (i - n) % 50), writes: [`k${i % keys}`, `k${(i * 7) % keys}`] }
        thunks.push(t)
        settled.push({ ts: t.ts, outcome: { status: 'committed' as const, value: null }, writes: [[`k${i % keys}`, i], [`k${(i * 7) % keys}`, -i]] as Array<[string, number]> })
      }
      // Batches of 50 thunks.
      const batches: Batch[] = []
      for (let i = 0; i < thunks.length; i += 50) batches.push({ epoch: 0, coordinator: 'v0', seq: (thunks[i] as Thunk).seq, thunks: thunks.slice(i, i + 50) })
      await s.write({ batches, settle: settled, txns: thunks.map(t => [t.clientTxnId, `${t.ts}c`] as [string, string]) })
      await s.gc(ts(Math.max(0, n + 499 - retain)), { records: ts(Math.max(0, n + 499 - 10 * retain)) })
    }
    const st = s.stats()
    expect(st.keys).toBe(keys)
    expect(st.versions).toBeLessThanOrEqual(keys + 2 * (retain + 1))
    expect(st.batches).toBeLessThanOrEqual(retain / 50 + 1)
    expect(st.outcomes).toBeLessThanOrEqual(retain + 1)
    expect((await s.entries(TS_INFINITY)).length).toBe(keys)
  })
})
