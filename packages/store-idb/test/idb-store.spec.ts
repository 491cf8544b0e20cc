import 'fake-indexeddb/auto'
import { deleteDB, openDB } from 'idb'
import { afterEach, describe, expect, it } from 'vitest'
import { StoreFormatError, TS_INFINITY } from '@tideline/core'
import { batchOf, thunkAt, tsAt } from '@tideline/core/store-compliance-cases'
import { IdbStore } from '../src/index.js'

// What the compliance suite does not pin down: the format check on open, and
// GC's range deletes. On fake-indexeddb, like the suite's fast run here.

let n = 0
const names: string[] = []
const fresh = (): string => {
  const name = `idb-store-spec-${n++}`
  names.push(name)
  return name
}

afterEach(async () => {
  for (const name of names.splice(0)) await deleteDB(name)
})

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
      expect((await store.batchRange('v0', 0, 1, Infinity)).map(b => b.seq)).toEqual([3, 6])
      expect((await store.batchRange('v1', 0, 1, Infinity)).map(b => b.seq)).toEqual([2])
      expect(await store.batchRange('v0', 1, 1, Infinity)).toEqual([])
      expect((await store.gc(tsAt(10))).batchesRemoved).toBe(0)
    } finally {
      await store.close()
    }
  })

  it('records the outcome of every first settlement, held batch or not, and collects it below the horizon', async () => {
    const name = fresh()
    const store = await IdbStore.open({ name })
    try {
      const outcome = { status: 'committed', value: 'first' } as const
      await store.write({ settle: [{ ts: tsAt(1), outcome, writes: [['k', 'first']] }, { ts: tsAt(12), outcome, writes: [] }] })
      await store.write({ settle: [{ ts: tsAt(1), outcome: { status: 'committed', value: 'second' }, writes: [['k', 'second']] }] })
      expect(await store.outcome(tsAt(1))).toEqual(outcome)
      expect((await store.latest('k', TS_INFINITY))?.value).toBe('first')
      const r = await store.gc(tsAt(10))
      expect(r.outcomesRemoved).toBe(1)
      expect(await store.outcome(tsAt(1))).toBe(undefined)
      expect(await store.outcome(tsAt(12))).toEqual(outcome)
    } finally {
      await store.close()
    }
  })
})
