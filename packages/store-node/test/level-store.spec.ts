import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { storeComplianceTests } from '@tideline/core/store-compliance'
import { TS_INFINITY, TS_ZERO, makeTimestamp, peerTag, type DamageKind, type DamageTarget, type Store, type StoreBatch, type Timestamp } from '@tideline/core'
import { batchOf, tsAt } from '@tideline/core/store-compliance-cases'
import { LevelStore } from '../src/index.js'
import type { RecordFilter } from '../src/record-filter.js'
import { TAG_LATEST, TAG_META, TAG_TXN, batchKey, nameKey } from '../src/keys.js'

/** The key a damage target's record lives under (generation 0: the cases damage before any snapshot import). */
function keyOf (target: DamageTarget): Buffer {
  if ('batch' in target) return batchKey(target.batch.coordinator, target.batch.epoch, target.batch.seq)
  if ('value' in target) return nameKey(TAG_LATEST, target.value)
  if ('record' in target) return nameKey(TAG_TXN, target.record)
  return nameKey(TAG_META, target.meta)
}

/**
 * Damages a record in the LevelDB files' own entries, the store closed: a
 * flipped bit in the middle of the stored bytes, the entry cut to half its
 * length, or the bytes of another entry of the same kind (check included)
 * written under this key.
 */
async function damageOnDisk (path: string, target: DamageTarget, kind: DamageKind): Promise<void> {
  const db = new ClassicLevel<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  try {
    const key = keyOf(target)
    const stored = await db.get(key)
    if (stored === undefined) throw new Error(`no record to damage at ${key.toString('latin1')}`)
    let bad: Buffer
    if (kind === 'bit-flip') {
      bad = Buffer.from(stored)
      const i = Math.floor(bad.length / 2)
      bad[i] = (bad[i] as number) ^ 0x10
    } else if (kind === 'torn') {
      bad = stored.subarray(0, Math.floor(stored.length / 2))
    } else {
      const tag = key.subarray(0, 2)
      const range = { gte: tag, lt: Buffer.from([tag[0] as number, 0x22]) }
      const other = (await db.iterator(range).all()).find(([k]) => !k.equals(key))
      if (other === undefined) throw new Error('no other record to misdirect')
      bad = other[1]
    }
    await db.put(key, bad, { sync: true })
  } finally {
    await db.close()
  }
}

storeComplianceTests('LevelStore', {
  versionWindow: true,
  async open (options = {}) {
    const path = await mkdtemp(join(tmpdir(), 'tideline-level-'))
    let current: Store = await LevelStore.open({ path, ...options })
    return {
      store: current,
      reopen: async () => {
        await current.close()
        current = await LevelStore.open({ path, ...options })
        return current
      },
      damage: async (target, kind) => {
        await current.close()
        await damageOnDisk(path, target, kind)
        current = await LevelStore.open({ path, ...options })
        return current
      },
      cleanup: async () => {
        await current.close()
        await rm(path, { recursive: true, force: true })
      }
    }
  }
})

describe('LevelStore format marker', () => {
  let path = ''
  beforeEach(async () => { path = await mkdtemp(join(tmpdir(), 'tideline-format-')) })
  afterEach(async () => { await rm(path, { recursive: true, force: true }) })

  /** The format record on disk (read with the store closed). */
  async function formatOnDisk (): Promise<string | undefined> {
    const db = new ClassicLevel<string, string>(path)
    await db.open()
    const format = await db.get('f!')
    await db.close()
    return format
  }

  /** Writes raw entries with classic-level, as another Tideline version would have. */
  async function seed (entries: Array<[string, string]>): Promise<void> {
    const db = new ClassicLevel<string, string>(path)
    await db.open()
    for (const [k, v] of entries) await db.put(k, v)
    await db.close()
  }

  it('refuses data written without a format record (an older version), and leaves it alone', async () => {
    // A thunk record of the layout before batches.
    await seed([['t!0000000000000000000000000000000001', 'x']])
    const err = await LevelStore.open({ path }).then(() => undefined, (e: unknown) => e)
    expect(err).toHaveProperty('name', 'StoreFormatError')
    expect((err as Error).message).toMatch(/another Tideline version/)
    // The database was closed (its lock released) and not changed.
    const db = new ClassicLevel<string, string>(path)
    await db.open()
    expect(await db.keys().all()).toEqual(['t!0000000000000000000000000000000001'])
    await db.close()
  })

  it('refuses data of another format', async () => {
    await seed([['f!', '99'], ['m!x', 'y']])
    await expect(LevelStore.open({ path })).rejects.toHaveProperty('name', 'StoreFormatError')
  })

  it('marks a new database, opens it again, and keeps the mark through a snapshot import', async () => {
    const store = await LevelStore.open({ path })
    await store.write({ meta: [['m', 1]], settle: [{ ts: tsAt(1), outcome: { status: 'committed', value: null }, writes: [['k', 1]] }] })
    await store.importSnapshot({ at: TS_ZERO, entries: [], txns: [], meta: [] })
    await store.close()
    const again = await LevelStore.open({ path })
    expect(await again.getMeta('m')).toBe(1)
    expect(await again.latest('k', TS_INFINITY)).toBe(undefined)
    await again.close()
    expect(await formatOnDisk()).toBe('5')
  })

  /**
   * A store as an older version left it: written by this one, then every
   * entry's check taken off (formats 3 and 4 have none) except those a
   * sealing interrupted after `sealedThrough` had done.
   */
  async function olderStore (format: string, sealedThrough?: (keys: Buffer[]) => Buffer): Promise<void> {
    const store = await LevelStore.open({ path })
    await store.write({ meta: [['m', 1]], batches: [batchOf(1, [1])], settle: [{ ts: tsAt(1), outcome: { status: 'committed', value: null }, writes: [['k', 1]] }], txns: [['t', `${tsAt(1)}c`]] })
    await store.close()
    const db = new ClassicLevel<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    const entries = (await db.iterator().all()).filter(([k]) => k.toString('latin1') !== 'f!')
    const through = sealedThrough?.(entries.map(([k]) => k))
    for (const [k, v] of entries) if (through === undefined || Buffer.compare(k, through) > 0) await db.put(k, v.subarray(4))
    await db.put(Buffer.from('f!'), Buffer.from(through === undefined ? format : `sealing:${through.toString('hex')}`))
    await db.close()
  }

  it.for(['3', '4', 'sealing'])('opens a store of format %s, adds a check to every entry, keeps its data, and marks it format 5', async format => {
    await olderStore(format, format === 'sealing' ? keys => keys[1] as Buffer : undefined)
    const again = await LevelStore.open({ path })
    expect(await again.getMeta('m')).toBe(1)
    expect(await again.latest('k', TS_INFINITY)).toMatchObject({ value: 1 })
    expect(await again.txnRecords(['t'])).toEqual([`${tsAt(1)}c`])
    expect(await again.batchRange('v0', 0, 1, 1)).toEqual({ batches: [batchOf(1, [1])], damaged: [] })
    await again.close()
    expect(await formatOnDisk()).toBe('5')
  })

  it('stages a snapshot under the other generation\'s tags, switches over at the commit, and clears the old one at the next GC step', async () => {
    const store = await LevelStore.open({ path })
    await store.write({ settle: [{ ts: tsAt(1), outcome: { status: 'committed', value: null }, writes: [['old', 1]] }], txns: [['t-old', `${tsAt(1)}c`]] })
    await store.importSnapshot({ at: tsAt(5), entries: [['new', 2]], txns: [['t-new', `${tsAt(4)}c`]], meta: [] })
    const tags = async (): Promise<string[]> => {
      await store.close()
      const db = new ClassicLevel<string, string>(path, { keyEncoding: 'binary' as 'utf8' })
      await db.open()
      const keys = await db.keys().all()
      await db.close()
      return [...new Set(keys.map(k => String(k).slice(0, 2)))].sort()
    }
    // Generation 1 holds the state; generation 0's keys are left for the next GC step (or open).
    expect(await tags()).toEqual(['L!', 'X!', 'f!', 'g!', 'l!', 'r!', 'x!'])
    let again = await LevelStore.open({ path })
    expect(await again.entries(TS_INFINITY)).toEqual([['new', 2]])
    expect(await again.txnRecords(['t-old', 't-new'])).toEqual([undefined, `${tsAt(4)}c`])
    // Back to generation 0; a GC step clears generation 1.
    await again.importSnapshot({ at: tsAt(9), entries: [['newer', 3]], txns: [], meta: [] })
    await again.gc(tsAt(9))
    await again.close()
    const db = new ClassicLevel<string, string>(path)
    await db.open()
    expect((await db.keys().all()).filter(k => /^[LXlx]!/.test(k)).map(k => k.slice(0, 2))).toEqual(['l!'])
    await db.close()
    again = await LevelStore.open({ path })
    expect(await again.entries(TS_INFINITY)).toEqual([['newer', 3]])
    await again.close()
  })
})

describe('LevelStore exactly-once filter', () => {
  let path = ''
  beforeEach(async () => { path = await mkdtemp(join(tmpdir(), 'tideline-records-')) })
  afterEach(async () => { await rm(path, { recursive: true, force: true }) })

  /** The Bloom filter of record ids the store keeps in memory (private: what memory holds is the point here). */
  const filter = (store: LevelStore): RecordFilter => (store as unknown as { records: RecordFilter }).records

  it('forgets the ids of records GC drops, and keeps the others', async () => {
    const store = await LevelStore.open({ path })
    try {
      await store.write({ txns: [['old', `${tsAt(1)}c`], ['new', `${tsAt(5)}c`]] })
      expect(filter(store).has('old')).toBe(true)
      const before = filter(store)
      // GC that drops no record leaves the filter as it is.
      await store.gc(tsAt(1), { records: tsAt(1) })
      expect(filter(store)).toBe(before)
      expect((await store.gc(tsAt(3), { records: tsAt(3) })).recordsRemoved).toBe(1)
      expect(filter(store).has('old')).toBe(false)
      expect(filter(store).has('new')).toBe(true)
      expect(await store.txnRecords(['old', 'new'])).toEqual([undefined, `${tsAt(5)}c`])
      // A record written after GC is found again.
      await store.write({ txns: [['old', `${tsAt(6)}c`]] })
      expect(await store.txnRecords(['old'])).toEqual([`${tsAt(6)}c`])
    } finally {
      await store.close()
    }
  })

  it('holds exactly the snapshot\'s ids after an import', async () => {
    const store = await LevelStore.open({ path })
    try {
      await store.write({ txns: [['mine', `${tsAt(9)}c`], ['both', `${tsAt(9)}mine`]] })
      await store.importSnapshot({ at: tsAt(5), entries: [], txns: [['both', `${tsAt(2)}c`], ['theirs', `${tsAt(3)}c`]], meta: [] })
      expect(['mine', 'both', 'theirs'].map(id => filter(store).has(id))).toEqual([false, true, true])
      expect(await store.txnRecords(['mine', 'both', 'theirs'])).toEqual([undefined, `${tsAt(2)}c`, `${tsAt(3)}c`])
    } finally {
      await store.close()
    }
  })
})

describe('LevelStore version window', () => {
  let path = ''
  beforeEach(async () => { path = await mkdtemp(join(tmpdir(), 'tideline-window-')) })
  afterEach(async () => { await rm(path, { recursive: true, force: true }) })

  const tag = peerTag('v0')
  const at = (ms: number): Timestamp => makeTimestamp(ms, tag, 0)
  const put = (ms: number, value: number): StoreBatch => ({ settle: [{ ts: at(ms), outcome: { status: 'committed', value: null }, writes: [['k', value]] }], durability: 'relaxed' })

  it('keeps only each key\'s newest version on disk, and one run record per settlement batch', async () => {
    const store = await LevelStore.open({ path })
    try {
      for (let i = 0; i <= 8; i++) await store.write(put(1_000 + 500 * i, i))
      await store.write({ settle: [{ ts: at(5_100), outcome: { status: 'committed', value: null }, writes: [['once', 'x']] }] })
      expect((await store.latest('k', at(10_000)))?.value).toBe(8)
    } finally {
      await store.close()
    }
    // On disk: one version per key and one run record per settlement batch, nothing per version.
    const db = new ClassicLevel<string, string>(path)
    await db.open()
    const keys = await db.keys().all()
    await db.close()
    expect(keys.filter(k => k.startsWith('l!'))).toHaveLength(2)
    expect(keys.filter(k => k.startsWith('r!'))).toHaveLength(10)
    expect(keys.filter(k => k.startsWith('v!') || k.startsWith('o!'))).toHaveLength(0)
  })

  it('settles from the newest versions it remembers as it would from disk: late writes, deletes and GC in any order', async () => {
    // Writes read the replaced newest versions from memory once seen; after any history the disk must hold, for each key, its
    // highest-timestamped write (a late one never replaces it), and a reopened store (nothing remembered) must agree.
    const step = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), ms: fc.integer({ min: 1, max: 60 }), key: fc.constantFrom('a', 'b', 'c'), value: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }) }),
      fc.record({ kind: fc.constant('gc' as const), ms: fc.integer({ min: 1, max: 60 }) })
    )
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async steps => {
      const dir = await mkdtemp(join(tmpdir(), 'tideline-newest-'))
      const model = new Map<string, { ms: number, value: number | undefined }>()
      const seen = new Set<number>()
      let horizon = 0
      let store = await LevelStore.open({ path: dir })
      try {
        for (const s of steps) {
          if (s.kind === 'gc') {
            await store.gc(at(s.ms * 1_000))
            horizon = Math.max(horizon, s.ms)
            continue
          }
          // One settlement per timestamp (a timestamp decides once), and none below what GC collected (a replica
          // collects only below what it settled).
          if (seen.has(s.ms) || s.ms <= horizon) continue
          seen.add(s.ms)
          await store.write({ settle: [{ ts: at(s.ms * 1_000), outcome: { status: 'committed', value: null }, writes: [[s.key, s.value]] }], durability: 'relaxed' })
          const before = model.get(s.key)
          if (before === undefined || before.ms < s.ms) model.set(s.key, { ms: s.ms, value: s.value })
        }
        const newest = async (st: LevelStore): Promise<Array<number | undefined>> => Promise.all(['a', 'b', 'c'].map(async k => (await st.latest(k, TS_INFINITY))?.value as number | undefined))
        const expected = ['a', 'b', 'c'].map(k => model.get(k)?.value)
        expect(await newest(store)).toEqual(expected)
        await store.close()
        store = await LevelStore.open({ path: dir })
        expect(await newest(store)).toEqual(expected)
      } finally {
        await store.close()
        await rm(dir, { recursive: true, force: true })
      }
    }), { numRuns: 60 })
  }, 60_000)
})
