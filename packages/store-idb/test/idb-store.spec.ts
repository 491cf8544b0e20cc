import 'fake-indexeddb/auto'
import { deleteDB, openDB } from 'idb'
import { describe, expect, it } from 'vitest'
import { StoreFormatError, TS_INFINITY, makeTimestamp, peerTag, recordCheck, type StoreBatch, type Timestamp } from '@tideline/core'
import { batchOf, thunkAt, tsAt } from '@tideline/core/store-compliance-cases'
import { IdbStore } from '../src/index.js'
import { freshNames } from './fresh-names.js'

// What the compliance suite does not pin down: the format check on open, the
// on-disk layout and the version window, write-once settlements issued
// without waiting, and GC's range deletes (upgrades: upgrade.spec.ts; record
// checks: checks.spec.ts). On fake-indexeddb, like the suite's fast run here.

const fresh = freshNames('idb-store-spec')

async function rejection (p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (err: unknown) => err)
}

/** A database as version 1 of IdbStore left it: one record per thunk, with some data in it. */
async function writeVersion1 (name: string): Promise<void> {
  const db = await openDB(name, 1, {
    upgrade (db) {
      db.createObjectStore('versions')
      db.createObjectStore('thunks', { keyPath: 'ts' }).createIndex('bySeq', ['coordinator', 'epoch', 'seq'])
      db.createObjectStore('outcomes')
      db.createObjectStore('txns')
      db.createObjectStore('meta')
    }
  })
  await db.put('thunks', thunkAt(1))
  await db.put('versions', 1, ['k', tsAt(1)])
  await db.put('meta', { ballot: 3 }, 'promise')
  db.close()
}

/** A database as version 2 of IdbStore left it: every version keyed [key, ts], one outcome per thunk. */
async function writeVersion2 (name: string): Promise<void> {
  const db = await openDB(name, 2, {
    upgrade (db) {
      db.createObjectStore('versions')
      db.createObjectStore('batches').createIndex('byLast', 'last')
      db.createObjectStore('outcomes')
      db.createObjectStore('txns')
      db.createObjectStore('meta')
    }
  })
  await db.put('batches', { last: tsAt(1), batch: batchOf(1, [1]) }, ['v0', 0, 1])
  await db.put('versions', 1, ['k', tsAt(1)])
  await db.put('outcomes', { status: 'committed', value: null }, tsAt(1))
  db.close()
}

describe('IdbStore format', () => {
  it('refuses a version 1 database with StoreFormatError and leaves it as it was', async () => {
    const name = fresh()
    await writeVersion1(name)
    const err = await rejection(IdbStore.open({ name }))
    expect(err).toBeInstanceOf(StoreFormatError)
    expect(err).toHaveProperty('name', 'StoreFormatError')
    expect((err as Error).message).toContain('version 1')

    const db = await openDB(name)
    try {
      expect(db.version).toBe(1)
      expect([...db.objectStoreNames].sort()).toEqual(['meta', 'outcomes', 'thunks', 'txns', 'versions'])
      expect(await db.get('thunks', tsAt(1))).toEqual(thunkAt(1))
      expect(await db.get('meta', 'promise')).toEqual({ ballot: 3 })
    } finally {
      db.close()
    }
    // Refused again on the next try: nothing was half-upgraded.
    expect(await rejection(IdbStore.open({ name }))).toHaveProperty('name', 'StoreFormatError')
  })

  it('refuses a version 2 database with StoreFormatError and leaves it as it was', async () => {
    const name = fresh()
    await writeVersion2(name)
    const err = await rejection(IdbStore.open({ name }))
    expect(err).toBeInstanceOf(StoreFormatError)
    expect((err as Error).message).toContain('version 2')
    const db = await openDB(name)
    try {
      expect(db.version).toBe(2)
      expect([...db.objectStoreNames].sort()).toEqual(['batches', 'meta', 'outcomes', 'txns', 'versions'])
      expect(await db.get('versions', ['k', tsAt(1)])).toBe(1)
      expect(await db.get('outcomes', tsAt(1))).toEqual({ status: 'committed', value: null })
      expect(await db.get('batches', ['v0', 0, 1])).toEqual({ last: tsAt(1), batch: batchOf(1, [1]) })
    } finally {
      db.close()
    }
    expect(await rejection(IdbStore.open({ name }))).toHaveProperty('name', 'StoreFormatError')
  })

  it('opens afresh once the old database is deleted', async () => {
    const name = fresh()
    await writeVersion1(name)
    expect(await rejection(IdbStore.open({ name }))).toHaveProperty('name', 'StoreFormatError')
    await deleteDB(name)
    const store = await IdbStore.open({ name })
    try {
      expect(await store.latest('k', TS_INFINITY)).toBe(undefined)
      expect(await store.getMeta('promise')).toBe(undefined)
    } finally {
      await store.close()
    }
  })

  it('refuses a database of a newer version with StoreFormatError and leaves it as it was', async () => {
    const name = fresh()
    const newer = await openDB(name, 99, { upgrade (db) { db.createObjectStore('future') } })
    await newer.put('future', 'kept', 'x')
    newer.close()
    const err = await rejection(IdbStore.open({ name }))
    expect(err).toBeInstanceOf(StoreFormatError)
    expect((err as Error).message).toContain('newer')
    const db = await openDB(name)
    try {
      expect(db.version).toBe(99)
      expect(await db.get('future', 'x')).toBe('kept')
    } finally {
      db.close()
    }
  })
})

describe('IdbStore GC', () => {
  it('removes every batch wholly below the horizon, across gaps, coordinators and epochs, and keeps the rest', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await store.write({
        batches: [
          // v0, epoch 0: 3 ends above the horizon, so the ones below it are two runs (1–2, 4–5); 6 lies above.
          batchOf(1, [1]), batchOf(2, [2]), batchOf(3, [3, 20]), batchOf(4, [4]), batchOf(5, [5]), batchOf(6, [21]),
          batchOf(1, [6], { coordinator: 'v1' }), batchOf(2, [22], { coordinator: 'v1' }),
          batchOf(1, [7], { epoch: 1 })
        ]
      })
      const r = await store.gc(tsAt(10))
      expect(r.batchesRemoved).toBe(6)
      expect((await store.batchRange('v0', 0, 1, Infinity)).batches.map(b => b.seq)).toEqual([3, 6])
      expect((await store.batchRange('v1', 0, 1, Infinity)).batches.map(b => b.seq)).toEqual([2])
      expect(await store.batchRange('v0', 1, 1, Infinity)).toEqual({ batches: [], damaged: [] })
      expect((await store.gc(tsAt(10))).batchesRemoved).toBe(0)
    } finally {
      await store.close()
    }
  })

  it('records the outcome of every first settlement, held batch or not, and collects run records ending below the horizon', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      const outcome = { status: 'committed', value: 'first' } as const
      await store.write({ settle: [{ ts: tsAt(1), outcome, writes: [['k', 'first']] }, { ts: tsAt(2), outcome, writes: [] }] })
      // One run record straddling the horizon (8 … 12): kept whole.
      await store.write({ settle: [{ ts: tsAt(12), outcome, writes: [] }, { ts: tsAt(8), outcome, writes: [] }] })
      await store.write({ settle: [{ ts: tsAt(1), outcome: { status: 'committed', value: 'second' }, writes: [['k', 'second']] }] })
      expect(await store.outcome(tsAt(1))).toEqual(outcome)
      expect((await store.latest('k', TS_INFINITY))?.value).toBe('first')
      const r = await store.gc(tsAt(10))
      expect(r.outcomesRemoved).toBe(2)
      expect(await store.outcome(tsAt(1))).toBe(undefined)
      expect(await store.outcome(tsAt(8))).toEqual(outcome)
      expect(await store.outcome(tsAt(12))).toEqual(outcome)
      expect((await store.gc(tsAt(10))).outcomesRemoved).toBe(0)
    } finally {
      await store.close()
    }
  })

  it('drops deletions that are a key\'s newest version below the horizon, and the versions held in memory below it', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      const settle = (n: number, writes: Array<[string, number | undefined]>): StoreBatch => ({ settle: [{ ts: tsAt(n), outcome: { status: 'committed', value: null }, writes }] })
      await store.write(settle(1, [['gone', 1], ['kept', 1], ['late', 1]]))
      await store.write(settle(2, [['gone', undefined], ['kept', 2]]))
      await store.write(settle(12, [['late', undefined]]))
      // Replaced at 2 (gone@1, kept@1) and 12 (late@1): GC at 10 forgets the first two; the deletion at 12 stays.
      const r = await store.gc(tsAt(10))
      expect(r.versionsRemoved).toBe(3)
      expect(await store.latest('gone', TS_INFINITY)).toBe(undefined)
      expect(await store.latest('kept', TS_INFINITY)).toEqual({ ts: tsAt(2), value: 2 })
      expect(await store.latest('late', TS_INFINITY)).toEqual({ ts: tsAt(12), value: undefined })
      expect(await store.latest('late', tsAt(12))).toEqual({ ts: tsAt(1), value: 1 })
      await expect(store.latest('kept', tsAt(2))).rejects.toMatchObject({ name: 'SnapshotTooOldError' })
    } finally {
      await store.close()
    }
  })
})

describe('IdbStore versions and settlements', () => {
  const tag = peerTag('v0')
  const at = (ms: number): Timestamp => makeTimestamp(ms, tag, 0)
  const put = (ms: number, value: number | string, key = 'k'): StoreBatch => ({ settle: [{ ts: at(ms), outcome: { status: 'committed', value }, writes: [[key, value]] }], durability: 'relaxed' })

  it('keeps only each key\'s newest version on disk, and one run record per settlement batch', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      for (let i = 0; i <= 8; i++) await store.write(put(1_000 + 500 * i, i))
      await store.write(put(5_100, 'x', 'once'))
      expect((await store.latest('k', TS_INFINITY))?.value).toBe(8)
    } finally {
      await store.close()
    }
    // On disk: one version per key and one run record per settlement batch, nothing per version.
    const db = await openDB(name)
    try {
      expect([...db.objectStoreNames].sort()).toEqual(['base', 'batches', 'latest', 'meta', 'runs', 'txns'])
      expect(await db.getAllKeys('latest')).toEqual(['k', 'once'])
      expect(await db.get('latest', 'k')).toEqual({ ts: at(5_000), value: 8, check: recordCheck('latest|k', [at(5_000), 8]) })
      expect(await db.count('runs')).toBe(10)
    } finally {
      db.close()
    }
  })

  it('a late write (below the newest) is held in memory only, and one batch puts each key once', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await store.write(put(5_000, 5))
      await store.write(put(3_000, 3))
      // Three versions of one key in one batch, out of order: the newest lands, the others are history.
      await store.write({ settle: [6_000, 8_000, 7_000].map(ms => ({ ts: at(ms), outcome: { status: 'committed', value: null }, writes: [['j', ms]] })) })
      expect(await store.latest('k', TS_INFINITY)).toEqual({ ts: at(5_000), value: 5 })
      expect(await store.latest('k', at(5_000))).toEqual({ ts: at(3_000), value: 3 })
      expect(await store.latest('k', at(3_000))).toBe(undefined)
      expect(await store.latestValues(['j', 'j', 'j'], TS_INFINITY)).toEqual([8_000, 8_000, 8_000])
      expect(await store.latestValues(['j'], at(8_000))).toEqual([7_000])
      expect(await store.latestValues(['j'], at(7_000))).toEqual([6_000])
      expect(await store.outcome(at(3_000))).toEqual({ status: 'committed', value: 3 })
    } finally {
      await store.close()
    }
    const db = await openDB(name)
    try {
      expect(await db.get('latest', 'k')).toMatchObject({ ts: at(5_000), value: 5 })
      expect(await db.get('latest', 'j')).toMatchObject({ ts: at(8_000), value: 8_000 })
      expect(await db.getAllKeys('runs')).toEqual([at(3_000), at(5_000), at(8_000)])
      const outcomes = [6_000, 7_000, 8_000].map(ms => [at(ms), { status: 'committed', value: null }])
      expect(await db.get('runs', at(8_000))).toEqual({ first: at(6_000), outcomes, check: recordCheck(`runs|${at(8_000)}`, [at(6_000), outcomes]) })
    } finally {
      db.close()
    }
  })

  it('settlements issued without waiting stay write-once: the first one issued decides a timestamp', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      await Promise.all([store.write(put(2_000, 'first')), store.write(put(2_000, 'second')), store.write(put(1_000, 'late')), store.write(put(1_000, 'again'))])
      expect(await store.outcome(at(2_000))).toEqual({ status: 'committed', value: 'first' })
      expect(await store.outcome(at(1_000))).toEqual({ status: 'committed', value: 'late' })
      expect(await store.latest('k', TS_INFINITY)).toEqual({ ts: at(2_000), value: 'first' })
      expect(await store.latest('k', at(2_000))).toEqual({ ts: at(1_000), value: 'late' })
    } finally {
      await store.close()
    }
    // After a reopen, too: the newest settled timestamp is read back from the run records.
    const again = await IdbStore.open({ name })
    try {
      await again.write(put(2_000, 'third'))
      expect(await again.outcome(at(2_000))).toEqual({ status: 'committed', value: 'first' })
      expect(await again.latest('k', TS_INFINITY)).toEqual({ ts: at(2_000), value: 'first' })
      // The version the newest one replaced went with the old connection.
      await expect(again.latest('k', at(2_000))).rejects.toMatchObject({ name: 'SnapshotTooOldError' })
      await again.write(put(3_000, 'fourth'))
      expect(await again.latest('k', at(3_000))).toEqual({ ts: at(2_000), value: 'first' })
    } finally {
      await again.close()
    }
  })

  it('finds outcomes of late runs that end after later ones, and copies values held in memory out', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      const settle = (mss: number[]): StoreBatch => ({ settle: mss.map(ms => ({ ts: at(ms), outcome: { status: 'committed', value: ms }, writes: [['v', { ms }]] })) })
      await store.write(settle([2_000, 3_000]))
      await store.write(settle([4_000]))
      // A late run: 1 s and 5 s, keyed by 5 s, spans the two above.
      await store.write(settle([1_000, 5_000]))
      for (const ms of [1_000, 2_000, 3_000, 4_000, 5_000]) expect(await store.outcome(at(ms))).toEqual({ status: 'committed', value: ms })
      expect(await store.outcome(at(2_500))).toBe(undefined)
      const held = (await store.latest('v', at(4_000)))?.value as { ms: number }
      held.ms = -1
      expect((await store.latest('v', at(4_000)))?.value).toEqual({ ms: 3_000 })
    } finally {
      await store.close()
    }
  })

  it('reads the same where the browser lacks getAllRecords (a getAllKeys and a getAll per range instead)', async () => {
    const proto = IDBObjectStore.prototype as { getAllRecords?: unknown }
    const saved = Object.getOwnPropertyDescriptor(proto, 'getAllRecords')
    delete proto.getAllRecords
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      const settle = (ms: number, keys: string[]): StoreBatch => ({ settle: [{ ts: at(ms), outcome: { status: 'committed', value: null }, writes: keys.map(k => [k, ms]) }] })
      await store.write(settle(1_000, ['a', 'b', 'c', 'd']))
      await store.write(settle(2_000, ['b', 'c', 'x']))
      expect(await store.entries(TS_INFINITY)).toEqual([['a', 1_000], ['b', 2_000], ['c', 2_000], ['d', 1_000], ['x', 2_000]])
      expect(await store.entries(at(2_000))).toEqual([['a', 1_000], ['b', 1_000], ['c', 1_000], ['d', 1_000]])
      expect((await store.gc(at(3_000))).versionsRemoved).toBe(2)
    } finally {
      await store.close()
      if (saved !== undefined) Object.defineProperty(proto, 'getAllRecords', saved)
    }
    expect(typeof proto.getAllRecords).toBe('function')
  })
})
