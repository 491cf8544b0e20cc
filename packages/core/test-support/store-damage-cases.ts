import { expect } from 'chai'
import { DAMAGE_KINDS, TS_INFINITY, type DamageKind, type Store } from '../src/index.js'
import type { ComplianceCase, StoreFactory, StoreHandle } from './store-compliance-cases.js'
import { batchOf, tsAt } from './store-batches.js'

/** Opens a fresh store with a damage hook, runs `fn` with it, then closes and cleans up. */
async function withDamage (factory: StoreFactory, fn: (store: Store, damage: NonNullable<StoreHandle['damage']>) => Promise<Store>): Promise<void> {
  const h = await factory.open()
  let store = h.store
  try {
    // Every store is checked for damage: one without a hook cannot show it detects any.
    if (h.damage === undefined) throw new Error('this store factory has no damage hook')
    store = await fn(store, h.damage)
  } finally {
    await store.close().catch(() => {})
    await h.cleanup?.()
  }
}

/** The error a promise rejected with (fails the case when it fulfilled). */
async function corruption (p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err, 'a read of a damaged record must fail').to.be.instanceOf(Error)
  expect((err as Error).name).to.equal('StoreCorruptionError')
  return (err as Error).message
}

function casesFor (kind: DamageKind): ComplianceCase[] {
  return [
    {
      name: `a damaged batch record (${kind}) is left out of ranges and named, and writing the batch again repairs it`,
      async run (factory) {
        await withDamage(factory, async (store, damage) => {
          await store.write({ batches: [batchOf(1, [1]), batchOf(2, [2, 3]), batchOf(3, [4])], durability: 'strict' })
          store = await damage({ batch: { coordinator: 'v0', epoch: 0, seq: 2 } }, kind)
          const found = await store.batchRange('v0', 0, 1, Infinity)
          expect(found.batches.map(b => b.seq)).to.deep.equal([1, 3])
          expect(found.damaged).to.deep.equal([2])
          expect((await store.batchRange('v0', 0, 2, 2)).damaged).to.deep.equal([2])
          await store.write({ batches: [batchOf(2, [2, 3])], durability: 'strict' })
          const repaired = await store.batchRange('v0', 0, 1, Infinity)
          expect(repaired.batches.map(b => b.seq)).to.deep.equal([1, 2, 3])
          expect(repaired.damaged).to.deep.equal([])
          expect(repaired.batches[1]).to.deep.equal(batchOf(2, [2, 3]))
          return store
        })
      }
    },
    {
      name: `a damaged value (${kind}) is never read, exported or served, and a snapshot import repairs it`,
      async run (factory) {
        await withDamage(factory, async (store, damage) => {
          await store.write({ batches: [batchOf(1, [1])], settle: [{ ts: tsAt(1), outcome: { status: 'committed', value: null }, writes: [['k', { n: 10 }], ['j', 5]] }] })
          store = await damage({ value: 'k' }, kind)
          expect(await corruption(store.latestValues(['k'], TS_INFINITY))).to.contain('k')
          await corruption(store.latestValues(['j', 'k'], TS_INFINITY))
          await corruption(store.latest('k', TS_INFINITY))
          expect(await store.latestValues(['j'], TS_INFINITY)).to.deep.equal([5])
          await corruption(store.entries(TS_INFINITY))
          await corruption(store.exportSnapshot(tsAt(2)))
          await store.importSnapshot({ at: tsAt(2), entries: [['j', 5], ['k', { n: 10 }]], txns: [], meta: [] })
          expect(await store.latestValues(['j', 'k'], TS_INFINITY)).to.deep.equal([5, { n: 10 }])
          expect(await store.entries(TS_INFINITY)).to.deep.equal([['j', 5], ['k', { n: 10 }]])
          return store
        })
      }
    },
    {
      name: `a damaged exactly-once record (${kind}) is never read, and a snapshot import repairs it`,
      async run (factory) {
        await withDamage(factory, async (store, damage) => {
          const record = `${tsAt(1)}committed`
          await store.write({ batches: [batchOf(1, [1])], txns: [['c1', record], ['c2', `${tsAt(1)}other`]] })
          store = await damage({ record: 'c1' }, kind)
          expect(await corruption(store.txnRecords(['c1']))).to.contain('c1')
          await corruption(store.exportSnapshot(tsAt(2)))
          await store.importSnapshot({ at: tsAt(2), entries: [], txns: [['c1', record], ['c2', `${tsAt(1)}other`]], meta: [] })
          expect(await store.txnRecords(['c1', 'c2'])).to.deep.equal([record, `${tsAt(1)}other`])
          return store
        })
      }
    },
    {
      name: `a damaged meta record (${kind}) is never read, and writing it again repairs it`,
      async run (factory) {
        await withDamage(factory, async (store, damage) => {
          await store.write({ meta: [['cursor', { count: 7 }], ['other', 1]], durability: 'strict' })
          store = await damage({ meta: 'cursor' }, kind)
          expect(await corruption(store.getMeta('cursor'))).to.contain('cursor')
          expect(await store.getMeta('other')).to.equal(1)
          await store.write({ meta: [['cursor', { count: 8 }]], durability: 'strict' })
          expect(await store.getMeta('cursor')).to.deep.equal({ count: 8 })
          return store
        })
      }
    }
  ]
}

/**
 * Storage faults: every store checks each record it reads, and a damaged one
 * (a flipped bit, a torn record, a record written in another's place: the
 * factory's `damage` hook does it to the store's real records) is never
 * answered; the write that repairs it (the batch again, a snapshot) works.
 */
export const storeDamageCases: readonly ComplianceCase[] = DAMAGE_KINDS.flatMap(casesFor)
