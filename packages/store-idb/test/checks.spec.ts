import 'fake-indexeddb/auto'
import { openDB } from 'idb'
import { describe, expect, it } from 'vitest'
import { DAMAGE_KINDS, TS_INFINITY, type Store, type Value } from '@tideline/core'
import { batchOf, tsAt } from '@tideline/core/store-compliance-cases'
import { IdbStore } from '../src/index.js'
import { freshNames } from './fresh-names.js'
import { damageIdbRecord } from '../test-support/damage.js'

// Record checks beyond the compliance suite's damage cases: snapshot pages
// and their index, run records, the write path, GC, and the reads of a
// browser without getAllRecords. On fake-indexeddb.

const fresh = freshNames('idb-checks-spec')

const committed = { status: 'committed', value: null } as const

/** The StoreCorruptionError a read fails with: its message. */
async function corruption (p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toHaveProperty('name', 'StoreCorruptionError')
  return (err as Error).message
}

/** A snapshot of `count` keys k000… with values { i }: 256 keys a page. */
const entries = (count: number): Array<[string, Value]> => Array.from({ length: count }, (_, i) => [`k${String(i).padStart(3, '0')}`, { i }])

describe('IdbStore snapshot pages', () => {
  for (const kind of DAMAGE_KINDS) {
    it(`a damaged page (${kind}) fails the reads of its values only, and a snapshot import replaces it`, async () => {
      const name = fresh()
      let store: Store = await IdbStore.open({ name })
      try {
        await store.importSnapshot({ at: tsAt(10), entries: entries(600), txns: [], meta: [] })
        // A deletion of a paged key, for GC below: it hides the page's entry, so it must stay.
        await store.write({ settle: [{ ts: tsAt(11), outcome: committed, writes: [['k300', undefined], ['new', 1]] }] })
        expect(await store.latestValues(['k300', 'k301'], TS_INFINITY)).toEqual([undefined, { i: 301 }])
        await store.close()
        await damageIdbRecord(name, { value: 'k301' }, kind)
        store = await IdbStore.open({ name })
        expect(await corruption(store.latest('k301', TS_INFINITY))).toContain('k301')
        await corruption(store.latestValues(['k000', 'k301'], TS_INFINITY))
        expect(await store.latestValues(['k000', 'k599', 'new', 'k300'], TS_INFINITY)).toEqual([{ i: 0 }, { i: 599 }, 1, undefined])
        await corruption(store.entries(TS_INFINITY))
        await corruption(store.exportSnapshot(tsAt(12)))
        // A settlement of a key in the damaged page cannot tell what it replaces: it fails whole.
        await corruption(store.write({ settle: [{ ts: tsAt(12), outcome: committed, writes: [['k302', 2], ['new', 2]] }], meta: [['m', 1]] }))
        expect(await store.getMeta('m')).toBe(undefined)
        expect(await store.outcome(tsAt(12))).toBe(undefined)
        // GC can read neither: the deletion stays.
        expect((await store.gc(tsAt(20))).versionsRemoved).toBe(0)
        await store.importSnapshot({ at: tsAt(20), entries: entries(600), txns: [], meta: [] })
        expect((await store.entries(TS_INFINITY)).length).toBe(600)
        expect(await store.latestValues(['k300', 'k301', 'new'], TS_INFINITY)).toEqual([{ i: 300 }, { i: 301 }, undefined])
      } finally {
        await store.close()
      }
    })
  }

  it('a damaged page index fails every read that falls back to the pages, until a snapshot import writes a new one', async () => {
    const name = fresh()
    let store: Store = await IdbStore.open({ name })
    try {
      await store.importSnapshot({ at: tsAt(10), entries: entries(300), txns: [], meta: [] })
      await store.write({ settle: [{ ts: tsAt(11), outcome: committed, writes: [['k000', 'written']] }] })
      await store.close()
      const db = await openDB(name)
      const index = await db.get('base', -1) as { firsts: string[] }
      await db.put('base', { ...index, firsts: ['k000', 'k255'] }, -1)
      db.close()
      store = await IdbStore.open({ name })
      expect(await store.latestValues(['k000'], TS_INFINITY)).toEqual(['written'])
      expect(await corruption(store.latest('k100', TS_INFINITY))).toContain('k100')
      await corruption(store.entries(TS_INFINITY))
      expect((await store.gc(tsAt(20))).versionsRemoved).toBe(0)
      await store.importSnapshot({ at: tsAt(20), entries: entries(3), txns: [], meta: [] })
      expect(await store.entries(TS_INFINITY)).toEqual(entries(3))
      await store.close()
      store = await IdbStore.open({ name })
      expect(await store.latestValues(['k001', 'k100'], TS_INFINITY)).toEqual([{ i: 1 }, undefined])
    } finally {
      await store.close()
    }
  })
})

describe('IdbStore damaged records', () => {
  it('a damaged run record fails the outcomes it may hold, not others, and GC drops it by its key', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await store.write({ settle: [{ ts: tsAt(1), outcome: committed, writes: [] }, { ts: tsAt(2), outcome: committed, writes: [] }] })
      await store.write({ settle: [{ ts: tsAt(5), outcome: committed, writes: [] }] })
      const db = await openDB(name)
      const run = await db.get('runs', tsAt(2)) as { outcomes: unknown[] }
      await db.put('runs', { ...run, outcomes: run.outcomes.slice(0, 1) }, tsAt(2))
      db.close()
      expect(await corruption(store.outcome(tsAt(1)))).toContain(tsAt(1))
      await corruption(store.outcome(tsAt(2)))
      expect(await store.outcome(tsAt(5))).toEqual(committed)
      // A late settlement below it cannot tell whether it is the first: the write fails.
      await corruption(store.write({ settle: [{ ts: tsAt(2), outcome: committed, writes: [['k', 1]] }] }))
      expect(await store.latest('k', TS_INFINITY)).toBe(undefined)
      const r = await store.gc(tsAt(3))
      expect(r.outcomesRemoved).toBe(0)
      expect(await store.outcome(tsAt(1))).toBe(undefined)
      expect(await store.outcome(tsAt(5))).toEqual(committed)
    } finally {
      await store.close()
    }
  })

  it('a settlement over a damaged newest version fails whole, landing nothing', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await store.write({ settle: [{ ts: tsAt(1), outcome: committed, writes: [['k', 1], ['j', 1]] }] })
      await damageIdbRecord(name, { value: 'k' }, 'bit-flip')
      const err = await corruption(store.write({ batches: [batchOf(2, [2])], settle: [{ ts: tsAt(2), outcome: committed, writes: [['j', 2], ['k', 2]] }], txns: [['c', `${tsAt(2)}c`]] }))
      expect(err).toContain('"k"')
      expect(await store.latestValues(['j'], TS_INFINITY)).toEqual([1])
      expect(await store.outcome(tsAt(2))).toBe(undefined)
      expect((await store.batchRange('v0', 0, 1, Infinity)).batches).toEqual([])
      expect(await store.txnRecords(['c'])).toEqual([undefined])
    } finally {
      await store.close()
    }
  })

  it('a damaged exactly-once record is replaced when written again; an intact one stays (write-once)', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await store.write({ txns: [['c1', `${tsAt(1)}first`], ['c2', `${tsAt(1)}first`]] })
      await damageIdbRecord(name, { record: 'c1' }, 'torn')
      await store.write({ txns: [['c1', `${tsAt(1)}again`], ['c2', `${tsAt(1)}again`]] })
      expect(await store.txnRecords(['c1', 'c2'])).toEqual([`${tsAt(1)}again`, `${tsAt(1)}first`])
    } finally {
      await store.close()
    }
  })

  it('GC leaves damaged batches, deletions and exactly-once records it would not drop by their keys alone, and drops them once repaired', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await store.write({
        batches: [batchOf(1, [1]), batchOf(2, [20]), batchOf(3, [2])],
        settle: [{ ts: tsAt(1), outcome: committed, writes: [['d', undefined]] }],
        txns: [['c1', `${tsAt(1)}c`], ['c2', `${tsAt(2)}c`]]
      })
      // Seq 1's record at seq 2's key: the index then says seq 2 ends at 1, below the horizon (it ends at 20).
      await damageIdbRecord(name, { batch: { coordinator: 'v0', epoch: 0, seq: 2 } }, 'misdirected')
      await damageIdbRecord(name, { batch: { coordinator: 'v0', epoch: 0, seq: 3 } }, 'bit-flip')
      await damageIdbRecord(name, { value: 'd' }, 'torn')
      await damageIdbRecord(name, { record: 'c1' }, 'bit-flip')
      const r = await store.gc(tsAt(10), { records: tsAt(10), limit: 100 })
      expect(r).toMatchObject({ batchesRemoved: 1, versionsRemoved: 0, recordsRemoved: 1 })
      expect(await store.batchRange('v0', 0, 1, Infinity)).toEqual({ batches: [], damaged: [2, 3] })
      await corruption(store.txnRecords(['c1']))
      await store.write({ batches: [batchOf(2, [20]), batchOf(3, [2])] })
      expect((await store.batchRange('v0', 0, 1, Infinity)).batches).toEqual([batchOf(2, [20]), batchOf(3, [2])])
      expect((await store.gc(tsAt(10))).batchesRemoved).toBe(1)
      expect(await store.batchRange('v0', 0, 1, Infinity)).toEqual({ batches: [batchOf(2, [20])], damaged: [] })
    } finally {
      await store.close()
    }
  })

  it('finds the same damage where the browser lacks getAllRecords (keys and values in two requests)', async () => {
    const protos = [IDBObjectStore.prototype, IDBIndex.prototype] as Array<{ getAllRecords?: unknown }>
    const saved = protos.map(p => Object.getOwnPropertyDescriptor(p, 'getAllRecords'))
    for (const p of protos) delete p.getAllRecords
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await store.write({ batches: [batchOf(1, [1]), batchOf(2, [2]), batchOf(3, [30])], settle: [{ ts: tsAt(1), outcome: committed, writes: [['a', 1], ['b', 1]] }] })
      await damageIdbRecord(name, { batch: { coordinator: 'v0', epoch: 0, seq: 3 } }, 'misdirected')
      await damageIdbRecord(name, { value: 'b' }, 'misdirected')
      expect(await store.batchRange('v0', 0, 1, Infinity)).toEqual({ batches: [batchOf(1, [1]), batchOf(2, [2])], damaged: [3] })
      expect(await corruption(store.entries(TS_INFINITY))).toContain('"b"')
      expect((await store.gc(tsAt(10), { limit: 10 })).batchesRemoved).toBe(2)
      expect(await store.batchRange('v0', 0, 1, Infinity)).toEqual({ batches: [], damaged: [3] })
    } finally {
      await store.close()
      protos.forEach((p, i) => { const d = saved[i]; if (d !== undefined) Object.defineProperty(p, 'getAllRecords', d) })
    }
    expect(typeof (IDBIndex.prototype as { getAllRecords?: unknown }).getAllRecords).toBe('function')
  })
})
