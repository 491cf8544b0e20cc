import { expect } from 'chai'
import fc from 'fast-check'
import { TS_INFINITY, inRange, keyRangeOf, type KeyQuery, type RangeOptions, type Store, type Value } from '../src/index.js'
import { batchOf, tsAt, withStore } from './store-batches.js'
import type { ComplianceCase } from './store-compliance-cases.js'

/*
 * Range reads (`Store.range`): the live keys of a key range at a timestamp,
 * in JavaScript string order, from either end, up to a limit, answered by
 * one ordered scan and equal to a point read of every key in the range.
 */

const settled = (n: number, writes: Array<[string, Value | undefined]>) =>
  ({ ts: tsAt(n), outcome: { status: 'committed' as const, value: null }, writes })

/**
 * Keys whose order differs between UTF-16 code units (JS, IndexedDB) and code
 * points (UTF-8 bytes): U+FFFD sorts after an astral character's surrogates.
 */
const KEYS = ['', 'a', 'a/1', 'a/2', 'a/10', 'ab', 'b', 'b\u0000', 'b/1', '\uFFFD', '\u{1F600}', 'z\uFFFF']

/** What a range read must answer, from point reads of every candidate key. */
async function byPointReads (store: Store, keys: readonly string[], query: KeyQuery, below: typeof TS_INFINITY, options: RangeOptions = {}): Promise<Array<[string, Value]>> {
  const range = keyRangeOf(query)
  const inside = [...new Set(keys)].filter(k => inRange(k, range)).sort()
  if (options.reverse === true) inside.reverse()
  const values = await store.latestValues(inside, below)
  const live = inside.map((k, i) => [k, values[i]] as [string, Value | undefined]).filter((e): e is [string, Value] => e[1] !== undefined)
  return live.slice(0, options.limit ?? live.length)
}

export const storeRangeCases: readonly ComplianceCase[] = [
  {
    name: 'range reads: the live keys of a range in string order, from either end, up to a limit',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        await store.write({ batches: [batchOf(1, [1, 2, 3])] })
        await store.write({ settle: [settled(1, KEYS.map((k, i) => [k, i] as [string, Value]))] })
        await store.write({ settle: [settled(2, [['a/2', undefined], ['ab', 'new']]), settled(3, [['a/3', 3]])] })
        const read = async (q: KeyQuery, below = TS_INFINITY, o?: RangeOptions): Promise<string[]> => (await store.range(keyRangeOf(q), below, o)).map(([k]) => k)
        expect(await read({ prefix: 'a/' })).to.deep.equal(['a/1', 'a/10', 'a/3'])
        expect(await read({ prefix: 'a/' }, tsAt(2))).to.deep.equal(['a/1', 'a/10', 'a/2'])
        expect(await read({ prefix: 'a/' }, TS_INFINITY, { reverse: true, limit: 2 })).to.deep.equal(['a/3', 'a/10'])
        expect(await read({ start: 'a', end: 'b' })).to.deep.equal(['a', 'a/1', 'a/10', 'a/3', 'ab'])
        expect(await read({ start: 'a', end: 'b' }, TS_INFINITY, { limit: 1 })).to.deep.equal(['a'])
        expect(await read({ start: 'b' })).to.deep.equal(['b', 'b\u0000', 'b/1', 'z\uFFFF', '\u{1F600}', '\uFFFD'])
        expect(await read({ start: '' }, TS_INFINITY, { reverse: true, limit: 3 })).to.deep.equal(['\uFFFD', '\u{1F600}', 'z\uFFFF'])
        expect(await read({ prefix: '' })).to.have.length(KEYS.length)
        expect(await read({ start: 'b', end: 'a' })).to.deep.equal([])
        expect(await read({ prefix: 'zz' })).to.deep.equal([])
        expect(await store.range(keyRangeOf({ prefix: 'ab' }), TS_INFINITY)).to.deep.equal([['ab', 'new']])
        expect(await store.range(keyRangeOf({ prefix: 'ab' }), tsAt(2))).to.deep.equal([['ab', 5]])
        expect(await store.range(keyRangeOf({ prefix: 'a/' }), tsAt(1))).to.deep.equal([])
        for (const bad of [0, -1, 1.5, Number.NaN]) {
          const err = await store.range({ start: 'a' }, TS_INFINITY, { limit: bad }).then(() => undefined, (e: unknown) => e)
          expect((err as Error | undefined)?.name, `limit ${bad}`).to.equal('InvalidArgumentError')
        }
      })
    }
  },

  {
    name: 'range reads equal a point read of every key in the range, for random histories, bounds, timestamps, limits and directions',
    async run (factory) {
      const write = fc.tuple(fc.constantFrom(...KEYS), fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }))
      const query: fc.Arbitrary<KeyQuery> = fc.oneof(
        fc.constantFrom(...KEYS).map(prefix => ({ prefix })),
        fc.tuple(fc.constantFrom(...KEYS), fc.option(fc.constantFrom(...KEYS), { nil: undefined })).map(([start, end]) => (end === undefined ? { start } : { start, end }))
      )
      await fc.assert(fc.asyncProperty(
        // Thunk n writes txns[n - 1]; settled in the order `order` gives (late settlements included).
        fc.array(fc.array(write, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }).chain(txns => fc.tuple(fc.constant(txns), fc.shuffledSubarray(txns.map((_t, i) => i + 1), { minLength: txns.length }))),
        fc.array(fc.tuple(query, fc.integer({ min: 0, max: 10 }), fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }), fc.boolean()), { minLength: 1, maxLength: 6 }),
        async ([txns, order], reads) => {
          await withStore(factory, async ({ store }) => {
            await store.write({ batches: [batchOf(1, txns.map((_t, i) => i + 1))] })
            for (const n of order) await store.write({ settle: [settled(n, txns[n - 1] as Array<[string, Value | undefined]>)], durability: 'relaxed' })
            for (const [q, at, limit, reverse] of reads) {
              const below = at > txns.length ? TS_INFINITY : tsAt(at)
              const options: RangeOptions = { reverse, ...(limit === undefined ? {} : { limit }) }
              expect(await store.range(keyRangeOf(q), below, options), JSON.stringify({ q, at, options })).to.deep.equal(await byPointReads(store, KEYS, q, below, options))
            }
          })
        }
      ), { numRuns: 25 })
    }
  },

  {
    name: 'range reads after a snapshot import merge its values with later writes and deletions, in order, across many keys',
    async run (factory) {
      await withStore(factory, async ({ store }) => {
        // 600 keys more than a store may put in one page of a snapshot (IdbStore: 256).
        const many = Array.from({ length: 600 }, (_x, i) => `p/${String(i).padStart(3, '0')}`)
        const keys = [...KEYS, ...many, 'a/3', 'p/250x', 'p/']
        await store.importSnapshot({ at: tsAt(10), entries: [...KEYS, ...many].map((k, i) => [k, i] as [string, Value]), txns: [], meta: [] })
        await store.write({ batches: [batchOf(1, [11, 12])] })
        await store.write({ settle: [settled(11, [['a/1', 'x'], ['a/2', undefined], ['a/3', 3], ['p/000', undefined], ['p/250x', 'new']])] })
        await store.write({ settle: [settled(12, [['\uFFFD', undefined], ['p/599', undefined], ['p/', 'first'], ['p/300', 'changed']])] })
        const queries: KeyQuery[] = [{ prefix: '' }, { prefix: 'a/' }, { prefix: 'p/' }, { start: 'p/250', end: 'p/520' }, { start: 'p/5' }, { start: 'b', end: 'p/001' }]
        const optionsList: RangeOptions[] = [{}, { reverse: true }, { limit: 2 }, { reverse: true, limit: 3 }, { limit: 300 }, { reverse: true, limit: 270 }]
        for (const below of [tsAt(11), tsAt(12), TS_INFINITY]) {
          for (const q of queries) {
            for (const o of optionsList) {
              expect(await store.range(keyRangeOf(q), below, o), JSON.stringify({ q, below, o })).to.deep.equal(await byPointReads(store, keys, q, below, o))
            }
          }
        }
      })
    }
  },

  {
    name: 'range reads after a reopen: below a key\'s newest they answer the version then or are refused, never a wrong one',
    async run (factory) {
      const h = await factory.open()
      let store = h.store
      try {
        if (h.reopen === undefined) return
        await store.write({ batches: [batchOf(1, [1, 2])] })
        await store.write({ settle: [settled(1, [['p/a', 1], ['p/b', 1]])] })
        await store.write({ settle: [settled(2, [['p/a', 2], ['p/c', 2]])] })
        store = await h.reopen()
        expect(await store.range(keyRangeOf({ prefix: 'p/' }), TS_INFINITY)).to.deep.equal([['p/a', 2], ['p/b', 1], ['p/c', 2]])
        const older = await store.range(keyRangeOf({ prefix: 'p/' }), tsAt(2)).catch((e: Error) => e.name)
        if (older !== 'SnapshotTooOldError') expect(older).to.deep.equal([['p/a', 1], ['p/b', 1]])
      } finally {
        await store.close().catch(() => {})
        await h.cleanup?.()
      }
    }
  }
]
