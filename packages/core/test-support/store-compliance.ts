import { describe, expect, it } from 'vitest'
import { TS_INFINITY, makeTimestamp, peerTag, type Store, type Thunk, type Timestamp, type Value } from '../src/index.js'

/** How the suite gets a store: fresh ones, and (for durable stores) the same data reopened. */
export interface StoreFactory {
  /** A new, empty store. */
  open(): Promise<StoreHandle>
}

export interface StoreHandle {
  readonly store: Store
  /** Closes this store and opens the same data again; absent for stores that keep nothing. */
  readonly reopen?: () => Promise<Store>
  /** Removes whatever the store left behind. */
  readonly cleanup?: () => Promise<void>
}

const tag = peerTag('v0')
const tagB = peerTag('v1')
export const tsAt = (n: number, t = tag): Timestamp => makeTimestamp(1_000_000 + n, t, 0)

export function thunkAt (n: number, opts: { coordinator?: string, seq?: number, epoch?: number, args?: Value } = {}): Thunk {
  const coordinator = opts.coordinator ?? 'v0'
  return {
    ts: tsAt(n, coordinator === 'v0' ? tag : tagB),
    epoch: opts.epoch ?? 0,
    coordinator,
    seq: opts.seq ?? n,
    procedure: 'p',
    hash: 'h',
    args: opts.args ?? { n },
    reads: ['k'],
    writes: ['k'],
    clientTxnId: `c${coordinator}-${n}`
  }
}

const settled = (n: number, writes: Array<[string, Value | undefined]>) =>
  ({ ts: tsAt(n), outcome: { status: 'committed' as const, value: null }, writes })

/**
 * The behaviour every Store must have, run against each implementation
 * (MemoryStore, the Node store, IndexedDB in Chromium).
 */
export function storeComplianceTests (name: string, factory: StoreFactory): void {
  async function withStore (fn: (h: StoreHandle) => Promise<void>): Promise<void> {
    const h = await factory.open()
    try {
      await fn(h)
    } finally {
      await h.store.close().catch(() => {})
      await h.cleanup?.()
    }
  }

  describe(`Store compliance: ${name}`, () => {
    it('answers the newest version strictly below a timestamp, settled in any order', async () => {
      await withStore(async ({ store }) => {
        await store.write({ thunks: [thunkAt(1), thunkAt(3), thunkAt(2)] })
        await store.write({ settle: [settled(1, [['k', 10]]), settled(3, [['k', 30]])] })
        await store.write({ settle: [settled(2, [['k', 20], ['j', 'x']])] })
        expect(await store.latest('k', tsAt(1))).toBeUndefined()
        expect(await store.latest('k', tsAt(2))).toEqual({ ts: tsAt(1), value: 10 })
        expect(await store.latest('k', tsAt(3))).toEqual({ ts: tsAt(2), value: 20 })
        expect(await store.latest('k', TS_INFINITY)).toEqual({ ts: tsAt(3), value: 30 })
        expect(await store.latestValues(['k', 'j', 'nope'], tsAt(3))).toEqual([20, 'x', undefined])
        expect(await store.outcome(tsAt(2))).toEqual({ status: 'committed', value: null })
      })
    })

    it('deletions are versions: absent from reads and entries after them', async () => {
      await withStore(async ({ store }) => {
        await store.write({ thunks: [thunkAt(1), thunkAt(2)], settle: [settled(1, [['a', 1], ['b', 2]])] })
        await store.write({ settle: [settled(2, [['a', undefined]])] })
        expect((await store.latest('a', TS_INFINITY))?.value).toBeUndefined()
        expect((await store.latest('a', tsAt(2)))?.value).toBe(1)
        expect(await store.entries(TS_INFINITY)).toEqual([['b', 2]])
        expect(await store.entries(tsAt(2))).toEqual([['a', 1], ['b', 2]])
      })
    })

    it('keeps thunks by coordinator, epoch and sequence, and knows which are unsettled', async () => {
      await withStore(async ({ store }) => {
        await store.write({ thunks: [thunkAt(1), thunkAt(2), thunkAt(4), thunkAt(5, { coordinator: 'v1', seq: 1 }), thunkAt(6, { epoch: 1, seq: 1 })] })
        expect((await store.thunkRange('v0', 0, 1, 10)).map(t => t.seq)).toEqual([1, 2, 4])
        expect((await store.thunkRange('v0', 0, 2, 3)).map(t => t.seq)).toEqual([2])
        expect((await store.thunkRange('v1', 0, 1, 1)).map(t => t.ts)).toEqual([tsAt(5, tagB)])
        expect((await store.thunkRange('v0', 1, 1, 1)).map(t => t.ts)).toEqual([tsAt(6)])
        await store.write({ settle: [settled(2, [])] })
        expect((await store.unsettled()).map(t => t.ts)).toEqual([tsAt(1), tsAt(4), tsAt(5, tagB), tsAt(6)].sort())
        expect(await store.thunkRange('v0', 0, 1, 1)).toEqual([thunkAt(1)])
      })
    })

    it('exactly-once records are write-once; meta is last-writer', async () => {
      await withStore(async ({ store }) => {
        await store.write({ txns: [['t1', `${tsAt(1)}c`]], meta: [['m', { a: [1, 2] }]] })
        await store.write({ txns: [['t1', `${tsAt(2)}c`], ['t2', `${tsAt(2)}c1`]], meta: [['m', 7]] })
        expect(await store.txnRecords(['t1', 't2', 't3'])).toEqual([`${tsAt(1)}c`, `${tsAt(2)}c1`, undefined])
        expect(await store.getMeta('m')).toBe(7)
        expect(await store.getMeta('none')).toBeUndefined()
      })
    })

    it('applies a batch all or nothing: a bad value anywhere rejects the whole batch', async () => {
      await withStore(async ({ store }) => {
        const bad = { thunks: [thunkAt(1)], settle: [settled(1, [['k', 1], ['bad', (() => 1) as unknown as Value]])], meta: [['m', 1]] as Array<[string, Value]> }
        await expect(store.write(bad)).rejects.toMatchObject({ name: 'InvalidValueError' })
        expect(await store.unsettled()).toEqual([])
        expect(await store.latest('k', TS_INFINITY)).toBeUndefined()
        expect(await store.getMeta('m')).toBeUndefined()
      })
    })

    it('copies values in and out, bytes included', async () => {
      await withStore(async ({ store }) => {
        const v = { n: [1], b: new Uint8Array([1, 2, 3]) }
        await store.write({ thunks: [thunkAt(1)], settle: [settled(1, [['k', v]])] })
        v.n.push(2)
        const got = (await store.latest('k', TS_INFINITY))?.value as { n: number[], b: Uint8Array }
        expect(got.n).toEqual([1])
        expect(got.b).toEqual(new Uint8Array([1, 2, 3]))
        got.n.push(3)
        const again = (await store.latest('k', TS_INFINITY))?.value as { n: number[] } | undefined
        expect(again?.n).toEqual([1])
      })
    })

    it('GC keeps the newest version below the horizon and everything above; drops settled thunks and old records', async () => {
      await withStore(async ({ store }) => {
        for (let n = 1; n <= 10; n++) {
          await store.write({ thunks: [thunkAt(n)], settle: n <= 9 ? [settled(n, [['k', n], ['d', n === 5 ? undefined : n]])] : [], txns: [[`t${n}`, `${tsAt(n)}c`]] })
        }
        const r = await store.gc(tsAt(7), { records: tsAt(3) })
        expect(r.thunksRemoved).toBe(6)
        expect(r.recordsRemoved).toBe(2)
        expect((await store.latest('k', tsAt(7)))?.value).toBe(6)
        expect((await store.latest('k', TS_INFINITY))?.value).toBe(9)
        expect((await store.latest('k', tsAt(6)))?.value).toBeUndefined() // gone: below the horizon's newest
        expect((await store.unsettled()).map(t => t.ts)).toEqual([tsAt(10)])
        expect((await store.thunkRange('v0', 0, 1, 10)).map(t => t.seq)).toEqual([7, 8, 9, 10])
        expect(await store.txnRecords(['t1', 't3', 't9'])).toEqual([undefined, `${tsAt(3)}c`, `${tsAt(9)}c`])
      })
    })

    it('GC bounds growth: versions stay O(keys), not O(transactions)', async () => {
      await withStore(async ({ store }) => {
        const keys = 100
        for (let n = 1; n <= 3000; n++) {
          await store.write({ thunks: [thunkAt(n)], settle: [settled(n, [[`k${n % keys}`, n]])] })
          if (n % 500 === 0) await store.gc(tsAt(n - 50))
        }
        const entries = await store.entries(TS_INFINITY)
        expect(entries.length).toBe(keys)
        // what survives: each key's version below the horizon plus the ones after it
        let versions = 0
        for (let k = 0; k < keys; k++) {
          for (let below = TS_INFINITY, v = await store.latest(`k${k}`, below); v !== undefined; v = await store.latest(`k${k}`, v.ts)) versions++
        }
        expect(versions).toBeLessThanOrEqual(keys + 500)
        expect((await store.thunkRange('v0', 0, 1, 3000)).length).toBeLessThanOrEqual(550)
      })
    })

    it('exports a snapshot that another store imports: same entries, records and meta', async () => {
      await withStore(async ({ store }) => {
        await store.write({ thunks: [thunkAt(1), thunkAt(2), thunkAt(3)], settle: [settled(1, [['a', 1], ['b', { x: 'y' }]]), settled(2, [['a', 2]])], txns: [['t1', `${tsAt(1)}c`], ['t2', `${tsAt(2)}c`]], meta: [['cursor', { n: 2 }]] })
        await store.write({ settle: [settled(3, [['a', 3]])], txns: [['t3', `${tsAt(3)}c`]] })
        const snap = await store.exportSnapshot(tsAt(3))
        expect(snap.entries).toEqual([['a', 2], ['b', { x: 'y' }]])
        await withStore(async ({ store: other }) => {
          await other.write({ thunks: [thunkAt(9)], settle: [settled(9, [['zzz', 1]])] })
          await other.importSnapshot(snap)
          expect(await other.entries(TS_INFINITY)).toEqual([['a', 2], ['b', { x: 'y' }]])
          expect((await other.latest('a', tsAt(3)))?.value).toBe(2)
          expect(await other.txnRecords(['t1', 't2', 't3'])).toEqual([`${tsAt(1)}c`, `${tsAt(2)}c`, undefined])
          expect(await other.getMeta('cursor')).toEqual({ n: 2 })
          expect(await other.unsettled()).toEqual([])
        })
      })
    })

    it('keeps everything written strictly across a close and reopen', async () => {
      const h = await factory.open()
      if (h.reopen === undefined) {
        await h.store.close()
        return
      }
      try {
        await h.store.write({ thunks: [thunkAt(1), thunkAt(2)], settle: [settled(1, [['k', 1]])], meta: [['m', 'v']], txns: [['t', `${tsAt(1)}c`]], durability: 'strict' })
        const again = await h.reopen()
        expect((await again.latest('k', TS_INFINITY))?.value).toBe(1)
        expect((await again.unsettled()).map(t => t.ts)).toEqual([tsAt(2)])
        expect(await again.getMeta('m')).toBe('v')
        expect(await again.txnRecords(['t'])).toEqual([`${tsAt(1)}c`])
        await again.close()
      } finally {
        await h.cleanup?.()
      }
    })
  })
}
