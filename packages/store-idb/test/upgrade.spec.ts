import 'fake-indexeddb/auto'
import { openDB, type IDBPDatabase } from 'idb'
import { describe, expect, it } from 'vitest'
import { TS_INFINITY } from '@tideline/core'
import { batchOf, tsAt } from '@tideline/core/store-compliance-cases'
import { IdbStore } from '../src/index.js'
import { freshNames } from './fresh-names.js'
import { intact } from '../src/checks.js'
import { ALL } from '../src/schema.js'

// Versions 3 and 4 are upgraded in place to 5: every record gains its check.
// On fake-indexeddb.

const fresh = freshNames('idb-upgrade-spec')

const committed = { status: 'committed', value: null } as const

/** A database as version `version` (3 or 4) of IdbStore left it: records without checks, exactly-once records and meta as they are. */
async function writeOld (name: string, version: 3 | 4): Promise<void> {
  const db = await openDB(name, version, {
    upgrade (db) {
      db.createObjectStore('latest')
      db.createObjectStore('batches').createIndex('byLast', 'last')
      db.createObjectStore('runs')
      db.createObjectStore('txns')
      db.createObjectStore('meta')
      if (version === 4) db.createObjectStore('base')
    }
  })
  await db.put('latest', { ts: tsAt(3), value: 'kept' }, 'k')
  await db.put('latest', { ts: tsAt(2), value: undefined }, 'gone')
  await db.put('batches', { last: tsAt(1), batch: batchOf(1, [1]) }, ['v0', 0, 1])
  await db.put('batches', { last: tsAt(30), batch: batchOf(2, [30]) }, ['v0', 0, 2])
  await db.put('runs', { first: tsAt(1), outcomes: [[tsAt(1), committed], [tsAt(3), committed]] }, tsAt(3))
  await db.put('txns', `${tsAt(1)}c`, 'c1')
  await db.put('meta', { n: 1 }, 'cursor')
  if (version === 4) {
    // An index written before staging (no start), one page, and a staged page of records a crash left behind.
    await db.put('base', { firsts: ['a'] }, -1)
    await db.put('base', { ts: tsAt(0), keys: ['a', 'b'], values: [1, 2] }, 0)
    await db.put('base', { records: [['x', `${tsAt(0)}x`]] }, 2 ** 30 + 2 ** 29)
  }
  db.close()
}

/** Every record of every object store passes its check. */
async function allChecked (db: IDBPDatabase): Promise<number> {
  let count = 0
  for (const name of ALL) {
    const tx = db.transaction(name)
    for (let cursor = await tx.store.openCursor(); cursor !== null; cursor = await cursor.continue()) {
      expect(intact(name, cursor.key, cursor.value), `${name} ${JSON.stringify(cursor.key)}`).toBe(true)
      count++
    }
  }
  return count
}

describe('IdbStore upgrades', () => {
  for (const version of [3, 4] as const) {
    it(`upgrades a version ${version} database in place: every record gains its check, and it reads, writes and collects as before`, async () => {
      const name = fresh()
      await writeOld(name, version)
      let store = await IdbStore.open({ name })
      try {
        expect((await store.latest('k', TS_INFINITY))?.value).toBe('kept')
        expect(await store.latest('gone', TS_INFINITY)).toEqual({ ts: tsAt(2), value: undefined })
        expect(await store.batchRange('v0', 0, 1, Infinity)).toEqual({ batches: [batchOf(1, [1]), batchOf(2, [30])], damaged: [] })
        expect(await store.outcome(tsAt(1))).toEqual(committed)
        expect(await store.txnRecords(['c1'])).toEqual([`${tsAt(1)}c`])
        expect(await store.getMeta('cursor')).toEqual({ n: 1 })
        const paged = version === 4 ? [['a', 1], ['b', 2]] : []
        expect(await store.entries(TS_INFINITY)).toEqual([...paged, ['k', 'kept']])
        await store.close()

        const db = await openDB(name)
        try {
          expect(db.version).toBe(5)
          expect(await allChecked(db)).toBe(version === 4 ? 10 : 7)
          expect(await db.get('txns', 'c1')).toMatchObject({ record: `${tsAt(1)}c` })
          expect(await db.get('meta', 'cursor')).toMatchObject({ value: { n: 1 } })
        } finally {
          db.close()
        }

        store = await IdbStore.open({ name })
        await store.write({ settle: [{ ts: tsAt(5), outcome: committed, writes: [['k', 'new'], ['a', 'new']] }], txns: [['c1', `${tsAt(5)}again`]], meta: [['cursor', { n: 2 }]] })
        expect(await store.latestValues(['k', 'a'], TS_INFINITY)).toEqual(['new', 'new'])
        expect(await store.txnRecords(['c1'])).toEqual([`${tsAt(1)}c`])
        expect(await store.gc(tsAt(10), { records: tsAt(10) })).toMatchObject({ batchesRemoved: 1, outcomesRemoved: 3, recordsRemoved: 1 })
        expect(await store.latest('gone', TS_INFINITY)).toBe(undefined)
        await store.importSnapshot({ at: tsAt(40), entries: [['z', 1]], txns: [['c9', `${tsAt(39)}c`]], meta: [] })
        expect(await store.entries(TS_INFINITY)).toEqual([['z', 1]])
        expect(await store.txnRecords(['c9', 'x'])).toEqual([`${tsAt(39)}c`, undefined])
      } finally {
        await store.close()
      }
    })
  }

  it('a record that is not a value (an unset meta record) is checked and upgraded as it is, not refused', async () => {
    const name = fresh()
    await writeOld(name, 4)
    const old = await openDB(name)
    await old.put('meta', undefined, 'broken')
    old.close()
    const store = await IdbStore.open({ name })
    try {
      expect(await store.getMeta('broken')).toBe(undefined)
      expect(await store.getMeta('cursor')).toEqual({ n: 1 })
      expect(await store.latestValues(['k'], TS_INFINITY)).toEqual(['kept'])
    } finally {
      await store.close()
    }
  })
})
