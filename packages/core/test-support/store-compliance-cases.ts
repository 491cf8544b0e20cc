import { expect } from 'chai'
import { StateDigest, TS_INFINITY, makeTimestamp, openSnapshotReader, openSnapshotWriter, StoreFailedError, type Batch, type DamageKind, type DamageTarget, type Outcome, type Settlement, type Store, type StoreBatch, type Timestamp, type Value, type Version } from '../src/index.js'

/** How the suite gets a store: fresh ones, and (for durable stores) the same data reopened. */
export interface StoreFactory {
  /** A new, empty store; `versionWindowMs` for stores that keep older versions in memory for a window. */
  open(options?: { readonly versionWindowMs?: number }): Promise<StoreHandle>
  /** The store keeps only each key's newest version durably and older ones for `versionWindowMs` (the window case runs). */
  readonly versionWindow?: boolean
}

export interface StoreHandle {
  readonly store: Store
  /** Closes this store and opens the same data again; absent for stores that keep nothing. */
  readonly reopen?: () => Promise<Store>
  /**
   * Damages one of the store's records as the fault `kind` would, in the
   * store's real records (closing and reopening it if it must), and answers
   * the store to go on with.
   */
  readonly damage?: (target: DamageTarget, kind: DamageKind) => Promise<Store>
  /** Removes whatever the store left behind. */
  readonly cleanup?: () => Promise<void>
}

import { tag, tagB, tsAt, thunkAt, batchOf, withStore } from './store-batches.js'
import { storeDamageCases } from './store-damage-cases.js'
import { storeRangeCases } from './store-range-cases.js'

export { tsAt, thunkAt, batchOf }

/** One batch per thunk: batch `n` holds the thunk at `n`. */
const singles = (...ns: number[]): Batch[] => ns.map(n => batchOf(n, [n]))

const settled = (n: number, writes: Array<[string, Value | undefined]>) =>
  ({ ts: tsAt(n), outcome: { status: 'committed' as const, value: null }, writes })

/** One behaviour every Store must have; `run` throws (a chai AssertionError) when the store lacks it. */
export interface ComplianceCase {
  readonly name: string
  run(factory: StoreFactory): Promise<void>
}


/** A read's version, or 'too old' when the store refused it with SnapshotTooOldError (it holds no versions that far back). */
async function versionOrTooOld (p: Promise<Version | undefined>): Promise<Version | undefined | 'too old'> {
  try {
    return await p
  } catch (err) {
    if ((err as Error).name === 'SnapshotTooOldError') return 'too old'
    throw err
  }
}

/** The settled reason of a promise that must reject (undefined if it fulfilled). */
async function rejection (p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (err: unknown) => err)
}

/**
 * The Store compliance suite as plain cases, free of any test runner, so the
 * same cases run under Vitest in Node and inside Chromium (page and worker).
 * Implementations: MemoryStore, LevelStore, IdbStore.
 */
export const storeComplianceCases: readonly ComplianceCase[] = [
  {
    name: 'answers the newest version strictly below a timestamp, settled in any order',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        await store.write({ batches: singles(1, 3, 2) })
        await store.write({ settle: [settled(1, [['k', 10]]), settled(3, [['k', 30]])] })
        await store.write({ settle: [settled(2, [['k', 20], ['j', 'x']])] })
        expect(await store.latest('k', tsAt(1))).to.equal(undefined)
        expect(await store.latest('k', tsAt(2))).to.deep.equal({ ts: tsAt(1), value: 10 })
        expect(await store.latest('k', tsAt(3))).to.deep.equal({ ts: tsAt(2), value: 20 })
        expect(await store.latest('k', TS_INFINITY)).to.deep.equal({ ts: tsAt(3), value: 30 })
        expect(await store.latestValues(['k', 'j', 'nope'], tsAt(3))).to.deep.equal([20, 'x', undefined])
        expect(await store.latestValues(['k', 'j', 'nope'], TS_INFINITY)).to.deep.equal([30, 'x', undefined])
        expect(await store.outcome(tsAt(2))).to.deep.equal({ status: 'committed', value: null })
      })
    }
  },

  {
    name: 'deletions are versions: absent from reads and entries after them',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        await store.write({ batches: [batchOf(1, [1, 2])], settle: [settled(1, [['a', 1], ['b', 2]])] })
        await store.write({ settle: [settled(2, [['a', undefined]])] })
        expect((await store.latest('a', TS_INFINITY))?.value).to.equal(undefined)
        expect((await store.latest('a', tsAt(2)))?.value).to.equal(1)
        expect(await store.latestValues(['a', 'b'], TS_INFINITY)).to.deep.equal([undefined, 2])
        expect(await store.latestValues(['a', 'b'], tsAt(2))).to.deep.equal([1, 2])
        expect(await store.entries(TS_INFINITY)).to.deep.equal([['b', 2]])
        expect(await store.entries(tsAt(2))).to.deep.equal([['a', 1], ['b', 2]])
      })
    }
  },

  {
    name: 'keeps batches by coordinator, epoch and sequence',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        const b1 = batchOf(1, [1, 2, 3])
        await store.write({ batches: [b1, batchOf(2, [4]), batchOf(4, [6, 7]), batchOf(1, [5], { coordinator: 'v1' }), batchOf(1, [8], { epoch: 1 })] })
        expect((await store.batchRange('v0', 0, 1, 10)).batches.map(b => b.seq)).to.deep.equal([1, 2, 4])
        expect((await store.batchRange('v0', 0, 2, Infinity)).batches.map(b => b.seq)).to.deep.equal([2, 4])
        expect((await store.batchRange('v0', 0, 2, 3)).batches.map(b => b.seq)).to.deep.equal([2])
        expect((await store.batchRange('v1', 0, 1, 1)).batches.map(b => b.thunks.map(t => t.ts))).to.deep.equal([[tsAt(5, tagB)]])
        expect((await store.batchRange('v0', 1, 1, 1)).batches.map(b => b.thunks.map(t => t.ts))).to.deep.equal([[tsAt(8)]])
        expect((await store.batchRange('v2', 0, 1, 10)).batches).to.deep.equal([])
        expect((await store.batchRange('v0', 0, 1, 1)).batches).to.deep.equal([b1])
      })
    }
  },

  {
    name: 'exactly-once records are write-once; meta is last-writer',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        await store.write({ txns: [['t1', `${tsAt(1)}c`]], meta: [['m', { a: [1, 2] }]] })
        await store.write({ txns: [['t1', `${tsAt(2)}c`], ['t2', `${tsAt(2)}c1`]], meta: [['m', 7]] })
        expect(await store.txnRecords(['t1', 't2', 't3'])).to.deep.equal([`${tsAt(1)}c`, `${tsAt(2)}c1`, undefined])
        expect(await store.getMeta('m')).to.equal(7)
        expect(await store.getMeta('none')).to.equal(undefined)
      })
    }
  },

  {
    name: 'applies a batch all or nothing: a bad value anywhere rejects the whole batch',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        const bad = { batches: singles(1), settle: [settled(1, [['k', 1], ['bad', (() => 1) as unknown as Value]])], meta: [['m', 1]] as Array<[string, Value]> }
        expect(await rejection(store.write(bad))).to.have.property('name', 'InvalidValueError')
        expect((await store.batchRange('v0', 0, 1, Infinity)).batches).to.deep.equal([])
        expect(await store.outcome(tsAt(1))).to.equal(undefined)
        expect(await store.latest('k', TS_INFINITY)).to.equal(undefined)
        expect(await store.getMeta('m')).to.equal(undefined)
      })
    }
  },

  {
    name: 'copies values in and out, bytes included',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        const v = { n: [1], b: new Uint8Array([1, 2, 3]) }
        await store.write({ batches: singles(1), settle: [settled(1, [['k', v]])] })
        v.n.push(2)
        const got = (await store.latest('k', TS_INFINITY))?.value as { n: number[], b: Uint8Array }
        expect(got.n).to.deep.equal([1])
        expect(got.b).to.deep.equal(new Uint8Array([1, 2, 3]))
        got.n.push(3)
        const again = (await store.latest('k', TS_INFINITY))?.value as { n: number[] } | undefined
        expect(again?.n).to.deep.equal([1])
      })
    }
  },

  {
    name: 'GC keeps the newest version below the horizon and everything above; drops batches and outcomes below it, and old records',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        for (let n = 1; n <= 10; n++) {
          const e: Array<[string, Value | undefined]> = n === 1 ? [['e', 'x']] : n === 6 ? [['e', undefined]] : []
          // Batches of two thunks: (1,2), (3,4), (5,6), (7,8), (9,10).
          await store.write({ batches: n % 2 === 1 ? [batchOf((n + 1) / 2, [n, n + 1])] : [], settle: n <= 9 ? [settled(n, [['k', n], ['d', n === 5 ? undefined : n], ...e])] : [], txns: [[`t${n}`, `${tsAt(n)}c`]] })
        }
        const r = await store.gc(tsAt(7), { records: tsAt(3) })
        // Batch 4 (7, 8) straddles nothing below the horizon: only batches 1 to 3 lie wholly below it.
        expect(r.batchesRemoved).to.equal(3)
        expect(r.outcomesRemoved).to.equal(6)
        expect(r.recordsRemoved).to.equal(2)
        expect((await store.latest('k', tsAt(7)))?.value).to.equal(6)
        expect((await store.latest('k', TS_INFINITY))?.value).to.equal(9)
        // Below the horizon's newest version: forgotten, or refused as too old (never an older value as if current).
        expect(await versionOrTooOld(store.latest('k', tsAt(6)))).to.be.oneOf([undefined, 'too old'])
        // a deletion that is the newest version below the horizon goes too, with everything under it
        expect(await store.latest('e', TS_INFINITY)).to.equal(undefined)
        expect((await store.latest('d', TS_INFINITY))?.value).to.equal(9)
        expect(await store.outcome(tsAt(6))).to.equal(undefined)
        expect(await store.outcome(tsAt(7))).to.deep.equal({ status: 'committed', value: null })
        expect((await store.batchRange('v0', 0, 1, 10)).batches.map(b => b.seq)).to.deep.equal([4, 5])
        expect(await store.txnRecords(['t1', 't3', 't9'])).to.deep.equal([undefined, `${tsAt(3)}c`, `${tsAt(9)}c`])
        // A dropped record is forgotten, in memory too: the id can be decided again (a retry past the retention window).
        await store.write({ txns: [['t1', `${tsAt(11)}c`], ['t3', `${tsAt(11)}c`]] })
        expect(await store.txnRecords(['t1', 't3'])).to.deep.equal([`${tsAt(11)}c`, `${tsAt(3)}c`])
      })
    }
  },

  {
    name: 'GC in bounded steps looks at no more than `limit` entries of a kind per step and ends where one whole pass does',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        for (let n = 1; n <= 10; n++) {
          await store.write({ batches: n % 2 === 1 ? [batchOf((n + 1) / 2, [n, n + 1])] : [], settle: n <= 9 ? [settled(n, [['k', n], [`d${n}`, n === 5 || n === 6 ? undefined : n]])] : [], txns: [[`t${n}`, `${tsAt(n)}c`]] })
        }
        const sum = { batches: 0, outcomes: 0, records: 0, steps: 0 }
        for (let more = true; more;) {
          const r = await store.gc(tsAt(7), { records: tsAt(3), limit: 2 })
          expect(r.batchesRemoved).to.be.at.most(2)
          expect(r.recordsRemoved).to.be.at.most(2)
          sum.batches += r.batchesRemoved
          sum.outcomes += r.outcomesRemoved
          sum.records += r.recordsRemoved
          more = r.more === true
          // A record written between steps is found, whatever the pass has seen.
          if (++sum.steps === 1) await store.write({ txns: [['t20', `${tsAt(20)}c`]] })
          expect(sum.steps).to.be.below(50)
        }
        expect(sum).to.deep.include({ batches: 3, outcomes: 6, records: 2 })
        expect((await store.batchRange('v0', 0, 1, 10)).batches.map(b => b.seq)).to.deep.equal([4, 5])
        expect(await store.txnRecords(['t1', 't2', 't3', 't9', 't20'])).to.deep.equal([undefined, undefined, `${tsAt(3)}c`, `${tsAt(9)}c`, `${tsAt(20)}c`])
        // The deletions below the horizon are gone, the values are not.
        expect(await store.latest('d5', TS_INFINITY)).to.equal(undefined)
        expect((await store.latest('d4', TS_INFINITY))?.value).to.equal(4)
        expect((await store.entries(TS_INFINITY)).map(([k]) => k).sort()).to.deep.equal(['d1', 'd2', 'd3', 'd4', 'd7', 'd8', 'd9', 'k'])
      })
    }
  },

  {
    name: 'GC bounds growth: versions stay O(keys), not O(transactions)',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        const keys = 100
        // Ten transactions per batch, relaxed: this case is about what GC keeps, and 3000
        // flushed one-transaction commits take over a minute in a loaded browser.
        for (let n = 10; n <= 3000; n += 10) {
          const ns = Array.from({ length: 10 }, (_, i) => n - 9 + i)
          await store.write({ batches: [batchOf(n / 10, ns)], settle: ns.map(m => settled(m, [[`k${m % keys}`, m]])), durability: 'relaxed' })
          if (n % 500 === 0) await store.gc(tsAt(n - 50))
        }
        const entries = await store.entries(TS_INFINITY)
        expect(entries.length).to.equal(keys)
        // what survives: each key's version below the horizon plus the ones after it
        let versions = 0
        for (let k = 0; k < keys; k++) {
          for (let v = await versionOrTooOld(store.latest(`k${k}`, TS_INFINITY)); v !== undefined && v !== 'too old'; v = await versionOrTooOld(store.latest(`k${k}`, v.ts))) versions++
        }
        expect(versions).to.be.at.most(keys + 500)
        expect((await store.batchRange('v0', 0, 1, 300)).batches.length).to.be.at.most(55)
      })
    }
  },

  {
    name: 'reads a snapshot out in parts (openSnapshotReader) from a view that writes after it do not change',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        await store.write({ settle: [settled(1, [['a', 1], ['b', 'x'.repeat(300)], ['c', 3]]), settled(2, [['a', 2], ['d', [4]]])], txns: [['t1', `${tsAt(1)}c`], ['t2', `${tsAt(2)}c`]] })
        await store.write({ settle: [settled(3, [['e', 5]])], txns: [['t3', `${tsAt(3)}c`]] })
        const whole = await store.exportSnapshot(tsAt(3))
        const reader = await openSnapshotReader(store, tsAt(3))
        expect(reader.at).to.equal(tsAt(3))
        // The store changes under the reader: a snapshot imported over it (a healing voter) and a later write.
        await store.importSnapshot({ at: tsAt(7), entries: [['z', 26]], txns: [['t9', `${tsAt(6)}c`]], meta: [] })
        await store.write({ settle: [settled(8, [['a', 'late']])], txns: [['t8', `${tsAt(8)}c`]] })
        const parts = []
        // One byte a part: one item each, the last ending the snapshot.
        for (let i = 0; i < 20; i++) {
          const part = await reader.read(1)
          parts.push(part)
          if (part.done) break
        }
        await reader.close()
        await reader.close()
        // A store may learn that it is at the end only when it looks for one more: its last part may be empty.
        const sizes = parts.map(p => p.entries.length + p.txns.length)
        expect(sizes.slice(0, 6)).to.deep.equal([1, 1, 1, 1, 1, 1])
        expect(sizes.slice(6)).to.deep.oneOf([[], [0]])
        expect(parts.map(p => p.done).lastIndexOf(false)).to.equal(parts.length - 2)
        expect(parts.flatMap(p => p.entries)).to.deep.equal([['a', 2], ['b', 'x'.repeat(300)], ['c', 3], ['d', [4]]])
        expect(parts.flatMap(p => p.txns)).to.deep.equal(whole.txns)
        expect(whole.entries).to.deep.equal(parts.flatMap(p => p.entries))
        // A part of any size holds at least one item; an empty state is one empty last part.
        const all = await openSnapshotReader(store, tsAt(9))
        const big = await all.read(Infinity)
        await all.close()
        expect(big.done).to.equal(true)
        expect(big.entries).to.deep.equal([['a', 'late'], ['z', 26]])
        expect([...big.txns].sort((x, y) => (x[0] < y[0] ? -1 : 1))).to.deep.equal([['t8', `${tsAt(8)}c`], ['t9', `${tsAt(6)}c`]])
        const none = await openSnapshotReader(store, tsAt(9))
        await none.close()
      })
    }
  },

  {
    name: 'exports a snapshot that another store imports: its values, records and outcomes replaced; its batches and other meta kept',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        await store.write({ batches: [batchOf(1, [1, 2, 3])], settle: [settled(1, [['a', 1], ['b', { x: 'y' }]]), settled(2, [['a', 2]])], txns: [['t1', `${tsAt(1)}c`], ['t2', `${tsAt(2)}c`]], meta: [['cursor', { n: 2 }]] })
        await store.write({ settle: [settled(3, [['a', 3]])], txns: [['t3', `${tsAt(3)}c`]] })
        const snap = await store.exportSnapshot(tsAt(3))
        expect(snap.entries).to.deep.equal([['a', 2], ['b', { x: 'y' }]])
        const h = await factory.open()
        let other = h.store
        try {
          // The importing replica's own state: a batch above the snapshot, its settlement, records (t1 decided
          // otherwise) and meta, one name of which the snapshot overwrites.
          await other.write({
            batches: singles(9),
            settle: [settled(9, [['zzz', 1], ['a', 'mine']])],
            txns: [['t1', `${tsAt(9)}mine`], ['t9', `${tsAt(9)}c`]],
            meta: [['cursor', { n: 9 }], ['config', { voters: ['v0'] }]]
          })
          await other.importSnapshot(snap)
          const check = async (s: Store): Promise<void> => {
            expect(await s.entries(TS_INFINITY)).to.deep.equal([['a', 2], ['b', { x: 'y' }]])
            expect((await s.latest('a', tsAt(4)))?.value).to.equal(2)
            // The snapshot is the state below `at`, at `at` and above: a read below it is refused, never answered from it.
            expect((await s.latest('a', tsAt(3)))?.value).to.equal(2)
            expect(await versionOrTooOld(s.latest('a', tsAt(2)))).to.equal('too old')
            expect(await s.latest('zzz', TS_INFINITY)).to.equal(undefined)
            expect(await s.latestValues(['a', 'b', 'zzz'], TS_INFINITY)).to.deep.equal([2, { x: 'y' }, undefined])
            expect(await s.txnRecords(['t1', 't2', 't3', 't9'])).to.deep.equal([`${tsAt(1)}c`, `${tsAt(2)}c`, undefined, undefined])
            expect(await s.getMeta('cursor')).to.deep.equal({ n: 2 })
            expect(await s.getMeta('config')).to.deep.equal({ voters: ['v0'] })
            expect((await s.batchRange('v0', 0, 1, Infinity)).batches).to.deep.equal(singles(9))
            expect(await s.outcome(tsAt(9))).to.equal(undefined)
          }
          await check(other)
          if (h.reopen !== undefined) {
            other = await h.reopen()
            await check(other)
          }
          // The kept batch is evaluated again on top of the snapshot, and a record the import dropped can be written anew.
          await other.write({ settle: [settled(9, [['a', 9]])], txns: [['t9', `${tsAt(9)}again`]] })
          expect(await other.outcome(tsAt(9))).to.deep.equal({ status: 'committed', value: null })
          expect(await other.latest('a', TS_INFINITY)).to.deep.equal({ ts: tsAt(9), value: 9 })
          expect((await other.latest('a', tsAt(9)))?.value).to.equal(2)
          expect(await other.txnRecords(['t9'])).to.deep.equal([`${tsAt(9)}again`])
        } finally {
          await other.close().catch(() => {})
          await h.cleanup?.()
        }
      })
    }
  },

  {
    name: 'stages a snapshot part by part (openSnapshotWriter) unseen until its commit, which replaces the state as an import does; a dropped staging changes nothing',
    async run (factory) {
      const h = await factory.open()
      let store = h.store
      try {
        await store.write({ batches: singles(9), settle: [settled(1, [['a', 1], ['zzz', 26]])], txns: [['t1', `${tsAt(1)}mine`]], meta: [['cursor', { n: 1 }], ['config', { voters: ['v0'] }]] })
        const before = async (s: Store): Promise<void> => {
          expect(await s.entries(TS_INFINITY)).to.deep.equal([['a', 1], ['zzz', 26]])
          expect(await s.txnRecords(['t1', 't2'])).to.deep.equal([`${tsAt(1)}mine`, undefined])
          expect(await s.getMeta('cursor')).to.deep.equal({ n: 1 })
        }
        // A staging given up: nothing of it shows.
        const dropped = await openSnapshotWriter(store, tsAt(5))
        await dropped.write({ entries: [['gone', 1]], txns: [['tx', `${tsAt(4)}c`]] })
        await dropped.abort()
        await before(store)
        const w = await openSnapshotWriter(store, tsAt(5))
        // Parts in no particular order: the second holds keys below the first's, and one between.
        const parts = [
          { entries: [['m', 'em'], ['p', [1, 2]], ['k', { k: true }]] as Array<[string, Value]>, txns: [['t2', `${tsAt(2)}c`]] as Array<[string, string]> },
          { entries: [['b', 'x'.repeat(300)], ['n', null]] as Array<[string, Value]>, txns: [['t3', `${tsAt(3)}c`], ['t1', `${tsAt(1)}c`]] as Array<[string, string]> },
          { entries: [['z', 0]] as Array<[string, Value]>, txns: [] as Array<[string, string]> }
        ]
        for (const part of parts) {
          const digest = await w.write(part)
          expect(digest).to.deep.equal({ values: StateDigest.lanesOf(part.entries), records: StateDigest.lanesOf([], part.txns) })
          // Staged, not seen.
          await before(store)
        }
        await w.commit([['cursor', { n: 5 }]])
        const after = async (s: Store): Promise<void> => {
          expect(await s.entries(TS_INFINITY)).to.deep.equal([['b', 'x'.repeat(300)], ['k', { k: true }], ['m', 'em'], ['n', null], ['p', [1, 2]], ['z', 0]])
          expect(await s.latestValues(['a', 'b', 'n', 'zzz', 'z'], TS_INFINITY)).to.deep.equal([undefined, 'x'.repeat(300), null, undefined, 0])
          expect((await s.latest('k', tsAt(5)))?.value).to.deep.equal({ k: true })
          expect(await versionOrTooOld(s.latest('k', tsAt(4)))).to.equal('too old')
          expect(await s.txnRecords(['t1', 't2', 't3', 'tx'])).to.deep.equal([`${tsAt(1)}c`, `${tsAt(2)}c`, `${tsAt(3)}c`, undefined])
          expect(await s.getMeta('cursor')).to.deep.equal({ n: 5 })
          expect(await s.getMeta('config')).to.deep.equal({ voters: ['v0'] })
          expect((await s.batchRange('v0', 0, 1, Infinity)).batches).to.deep.equal(singles(9))
        }
        await after(store)
        if (h.reopen !== undefined) {
          store = await h.reopen()
          await after(store)
        }
        // Written over after the commit: the new versions shadow the staged ones.
        await store.write({ settle: [settled(9, [['b', 'new'], ['m', undefined]])] })
        expect(await store.latestValues(['b', 'm', 'k'], TS_INFINITY)).to.deep.equal(['new', undefined, { k: true }])
        // A second snapshot replaces the first (a store that keeps pages switches back to its first range).
        await store.importSnapshot({ at: tsAt(12), entries: [['q', 1]], txns: [], meta: [] })
        expect(await store.entries(TS_INFINITY)).to.deep.equal([['q', 1]])
        if (h.reopen !== undefined) {
          store = await h.reopen()
          expect(await store.entries(TS_INFINITY)).to.deep.equal([['q', 1]])
          expect(await store.txnRecords(['t1'])).to.deep.equal([undefined])
        }
      } finally {
        await store.close().catch(() => {})
        await h.cleanup?.()
      }
    }
  },

  {
    name: 'after importing a snapshot of many keys, later writes and deletions shadow its values, through GC, a reopen and an export',
    async run (factory) {
      const h = await factory.open()
      let store = h.store
      try {
        const keyOf = (i: number): string => `k${String(i).padStart(4, '0')}`
        // In no particular order (a store sorts what it needs sorted); values of every size up to a few KB.
        const entries: Array<[string, Value]> = Array.from({ length: 700 }, (_, i) => [keyOf(699 - i), { n: 699 - i, pad: 'x'.repeat(((699 - i) * 37) % 3000) }])
        await store.importSnapshot({ at: tsAt(10), entries, txns: [], meta: [] })
        await store.write({ settle: [settled(11, [[keyOf(5), 'new'], [keyOf(300), undefined], ['zz', 1]])] })
        const check = async (s: Store): Promise<void> => {
          expect((await s.latest(keyOf(5), TS_INFINITY))?.value).to.equal('new')
          expect((await s.latest(keyOf(699), TS_INFINITY))?.value).to.deep.include({ n: 699 })
          expect((await s.latest(keyOf(300), TS_INFINITY))?.value).to.equal(undefined)
          expect(await s.latest('k', TS_INFINITY)).to.equal(undefined)
          expect((await s.latestValues([keyOf(0), keyOf(300), 'zz', keyOf(256)], TS_INFINITY)).map(v => (typeof v === 'object' && v !== null && 'n' in v ? v.n : v))).to.deep.equal([0, undefined, 1, 256])
          const all = await s.entries(TS_INFINITY)
          expect(all.length).to.equal(700)
          expect(all.map(([k]) => k)).to.deep.equal(all.map(([k]) => k).sort())
          expect(all.find(([k]) => k === keyOf(300))).to.equal(undefined)
          expect(all[all.length - 1]).to.deep.equal(['zz', 1])
          // What a caller is given is its own.
          const got = (await s.latest(keyOf(7), TS_INFINITY))?.value as { n: number }
          got.n = 99
          expect((await s.latest(keyOf(7), TS_INFINITY))?.value).to.deep.include({ n: 7 })
        }
        await check(store)
        // Below the deletion, the snapshot's value (or a refusal, never a wrong value).
        const before = await versionOrTooOld(store.latest(keyOf(300), tsAt(11)))
        expect(before === 'too old' ? before : before?.value).to.satisfy((v: unknown) => v === 'too old' || (typeof v === 'object' && v !== null && (v as { n: number }).n === 300))
        // GC far above both: the deletion must keep hiding the snapshot's value.
        for (let more = true; more;) more = (await store.gc(tsAt(50), { limit: 64 })).more === true
        await check(store)
        if (h.reopen !== undefined) {
          store = await h.reopen()
          await check(store)
        }
        expect((await store.exportSnapshot(tsAt(12))).entries).to.deep.equal(await store.entries(tsAt(12)))
      } finally {
        await store.close().catch(() => {})
        await h.cleanup?.()
      }
    }
  },

  {
    name: 'keeps everything written strictly across a close and reopen',
    async run (factory) {
      const h = await factory.open()
      if (h.reopen === undefined) {
        await h.store.close()
        return
      }
      try {
        await h.store.write({ batches: [batchOf(1, [1, 2])], settle: [settled(1, [['k', 1]])], meta: [['m', 'v']], txns: [['t', `${tsAt(1)}c`]], durability: 'strict' })
        const again = await h.reopen()
        expect((await again.latest('k', TS_INFINITY))?.value).to.equal(1)
        expect((await again.batchRange('v0', 0, 1, Infinity)).batches).to.deep.equal([batchOf(1, [1, 2])])
        expect(await again.outcome(tsAt(1))).to.deep.equal({ status: 'committed', value: null })
        expect(await again.outcome(tsAt(2))).to.equal(undefined)
        expect(await again.getMeta('m')).to.equal('v')
        expect(await again.txnRecords(['t'])).to.deep.equal([`${tsAt(1)}c`])
        await again.close()
      } finally {
        await h.cleanup?.()
      }
    }
  },

  {
    name: 'after a reopen, a read below a key\'s newest version answers the version then current or fails with SnapshotTooOldError',
    async run (factory) {
      const h = await factory.open()
      let store = h.store
      try {
        for (let n = 1; n <= 5; n++) await store.write({ batches: singles(n), settle: [settled(n, [['k', n * 10], ['j', n === 1 ? 'one' : undefined]])], durability: 'strict' })
        if (h.reopen !== undefined) store = await h.reopen()
        expect((await store.latest('k', TS_INFINITY))?.value).to.equal(50)
        expect(await store.latestValues(['k', 'j'], TS_INFINITY)).to.deep.equal([50, undefined])
        // Below the newest: the version current then, or a refusal; never the newest, never nothing.
        for (let n = 2; n <= 5; n++) {
          const got = await versionOrTooOld(store.latest('k', tsAt(n)))
          if (got !== 'too old') expect(got).to.deep.equal({ ts: tsAt(n - 1), value: (n - 1) * 10 })
        }
        // Written after the reopen: reads between the new versions are answered.
        for (let n = 6; n <= 8; n++) await store.write({ batches: singles(n), settle: [settled(n, [['k', n * 10]])] })
        expect((await store.latest('k', tsAt(7)))?.value).to.equal(60)
        expect((await store.latest('k', tsAt(8)))?.value).to.equal(70)
        expect(await store.latestValues(['k'], tsAt(8))).to.deep.equal([70])
      } finally {
        await store.close().catch(() => {})
        await h.cleanup?.()
      }
    }
  },

  {
    name: 'a store with a version window keeps what the newest versions replaced for the window, and refuses older reads',
    async run (factory) {
      if (factory.versionWindow !== true) return
      const h = await factory.open({ versionWindowMs: 1_000 })
      const store = h.store
      const at = (ms: number): Timestamp => makeTimestamp(ms, tag, 0)
      const put = (ms: number, value: Value, key = 'k'): StoreBatch => ({ settle: [{ ts: at(ms), outcome: { status: 'committed', value: null }, writes: [[key, value]] }], durability: 'relaxed' })
      try {
        // Versions at 1 s, 1.5 s, ..., 5 s: the window keeps what writes in the last second replaced.
        for (let i = 0; i <= 8; i++) await store.write(put(1_000 + 500 * i, i))
        expect((await store.latest('k', at(10_000)))?.value).to.equal(8)
        expect((await store.latest('k', at(4_600)))?.value).to.equal(7) // replaced at 5 s
        expect((await store.latest('k', at(4_100)))?.value).to.equal(6) // replaced at 4.5 s
        // Replaced at 3.5 s, more than a second before the newest write: gone, and said so.
        expect(await versionOrTooOld(store.latest('k', at(3_100)))).to.equal('too old')
        expect(await rejection(store.latestValues(['k'], at(3_100)))).to.have.property('name', 'SnapshotTooOldError')
        expect(await rejection(store.entries(at(3_100)))).to.have.property('name', 'SnapshotTooOldError')
        // A key never rewritten is answered at any timestamp from its one version.
        await store.write(put(5_100, 'x', 'once'))
        expect(await store.latestValues(['once'], at(5_200))).to.deep.equal(['x'])
        expect(await store.latestValues(['once'], at(5_100))).to.deep.equal([undefined])
        expect(await store.entries(at(4_600))).to.deep.equal([['k', 7]])
      } finally {
        await store.close().catch(() => {})
        await h.cleanup?.()
      }
    }
  },

  {
    name: 'batches and outcomes are write-once, across a reopen too; a late batch below settled ones is kept',
    async run (factory) {
      const h = await factory.open()
      let store = h.store
      try {
        const other = (seq: number, ns: number[]): Batch => batchOf(seq, ns, { args: n => ({ other: n }) })
        const outcome = (value: Value): Outcome => ({ status: 'committed', value })
        const settle = (n: number, value: Value): Settlement => ({ ts: tsAt(n), outcome: outcome(value), writes: [['k', value]] })
        await store.write({ batches: [batchOf(2, [2, 3]), batchOf(3, [4])] })
        await store.write({ settle: [settle(2, 'first')] })
        // Batch 2 (partly settled) and 3 written again with other contents, and 2 settled again: nothing changes.
        await store.write({ batches: [other(2, [2, 3]), other(3, [4])] })
        await store.write({ settle: [settle(2, 'second')] })
        expect((await store.batchRange('v0', 0, 2, 3)).batches).to.deep.equal([batchOf(2, [2, 3]), batchOf(3, [4])])
        expect(await store.outcome(tsAt(2))).to.deep.equal(outcome('first'))
        expect((await store.latest('k', TS_INFINITY))?.value).to.equal('first')
        if (h.reopen !== undefined) store = await h.reopen()
        // The same after a reopen, while settling goes on.
        await store.write({ batches: [other(2, [2, 3]), other(3, [4])], settle: [settle(3, 'three')] })
        await store.write({ settle: [settle(3, 'again'), settle(2, 'again')] })
        // A late batch (1) below settled thunks is kept and can be settled; so is a new one (4).
        await store.write({ batches: [batchOf(1, [1]), batchOf(4, [5])] })
        expect((await store.batchRange('v0', 0, 1, 4)).batches).to.deep.equal([batchOf(1, [1]), batchOf(2, [2, 3]), batchOf(3, [4]), batchOf(4, [5])])
        expect(await store.outcome(tsAt(2))).to.deep.equal(outcome('first'))
        expect(await store.outcome(tsAt(3))).to.deep.equal(outcome('three'))
        expect((await store.latest('k', TS_INFINITY))?.value).to.equal('three')
        await store.write({ settle: [settle(5, 'five'), settle(1, 'one')] })
        expect(await store.outcome(tsAt(1))).to.deep.equal(outcome('one'))
        expect(await store.outcome(tsAt(5))).to.deep.equal(outcome('five'))
        expect(await store.outcome(tsAt(4))).to.equal(undefined)
      } finally {
        await store.close().catch(() => {})
        await h.cleanup?.()
      }
    }
  },

  {
    name: 'refuses writes after close with StoreFailedError',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        await store.write({ batches: singles(1) })
        await store.close()
        const err = await rejection(store.write({ batches: singles(2) }))
        expect(err).to.be.instanceOf(StoreFailedError)
        expect(err).to.have.property('name', 'StoreFailedError')
      })
    }
  },
  ...storeDamageCases,
  ...storeRangeCases
]
