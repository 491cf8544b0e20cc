import { cloneValue, timestampPredecessor, type Timestamp, type Value } from '@tideline/core'
import { corruption, intact, names, sealed } from './checks.js'
import { all, request, scan } from './requests.js'
import type { BaseIndex, BasePage, LatestRecord, RecordPage } from './schema.js'

/** Most values one page holds, and most bytes of them (roughly): a put per page, not per key. */
const PAGE_KEYS = 256
const PAGE_BYTES = 256 * 1024
/** Pages kept decoded in memory for reads (each up to about PAGE_BYTES). */
const CACHED_PAGES = 16
/** The `base` key of the record that lists every page's first key (and where the pages start). */
export const BASE_INDEX_KEY = -1
/**
 * The two ranges of `base` keys pages live in, [0, SPAN) and [SPAN, 2 SPAN):
 * the current snapshot's pages in one, a snapshot being staged in the other
 * (its value pages from the range's start, its record pages from RECORDS on).
 */
const SPAN = 2 ** 30
const RECORDS = 2 ** 29

/** The keys of one range of pages. */
function span (start: number): IDBKeyRange {
  return IDBKeyRange.bound(start, start + SPAN, false, true)
}

/**
 * A snapshot's values as pages: what a snapshot import writes instead of one
 * `latest` record per key. In Chromium every IndexedDB request is a round
 * trip to the browser process, which costs about as much for 10 bytes as for
 * 1 KB (10,000 puts take 1.4 to 1.8 s on this machine, 40 pages holding the
 * same 10 MB about 0.25 s), so a snapshot goes in as few large records.
 *
 * A key's newest version is its `latest` record when it has one (anything
 * written after the snapshot, deletions included) and else its entry in the
 * page whose first key is the greatest at or below it, as of the snapshot.
 * The pages are never rewritten: a key overwritten later is shadowed by its
 * `latest` record, and GC keeps a deletion that shadows a page's entry.
 *
 * A fetched snapshot is staged part by part (StagedPages) in the other range
 * of keys while the current pages serve; its commit switches the index over.
 *
 * Each page and the index carry a check (checks.ts) over the whole record. A
 * damaged page fails the reads that need one of its keys; a damaged index
 * (which pages exist is then unknown) fails every read that falls back to
 * the pages, until a snapshot import writes a new one.
 */
export class BaseLayer {
  private gen: Pages = new Pages([], 0)

  /**
   * The pages as a transaction created now sees them: take it in the same
   * tick as the transaction, since a commit issued meanwhile replaces them
   * for every transaction created after it (and not for those before).
   */
  get current (): Pages {
    return this.gen
  }

  /** Reads the page index (at open). */
  async load (base: IDBObjectStore): Promise<void> {
    const index = await request(base.get(BASE_INDEX_KEY) as IDBRequest<BaseIndex | undefined>)
    if (index !== undefined && !intact('base', BASE_INDEX_KEY, index)) this.gen = Pages.unknown()
    else this.gen = new Pages(index?.firsts ?? [], index?.start ?? 0)
  }

  /** Starts staging a snapshot in the range the current pages do not use, clearing what an earlier staging left there (with a damaged index, the pages in it go too: none can be read). */
  stage (base: IDBObjectStore, at: Timestamp): StagedPages {
    const start = this.gen.start === 0 ? SPAN : 0
    base.delete(span(start))
    return new StagedPages(at, start)
  }

  /**
   * Makes `staged` the current pages, in `base`'s transaction (issued in
   * the same tick as it was created), dropping the old ones; every
   * transaction created from now on reads the new ones.
   */
  commit (base: IDBObjectStore, staged: StagedPages): void {
    base.delete(span(this.gen.start))
    base.put(sealed('base', BASE_INDEX_KEY, { firsts: staged.firsts, start: staged.start }) satisfies BaseIndex, BASE_INDEX_KEY)
    this.gen = new Pages(staged.firsts, staged.start)
  }

  /** The staged records' pages, once copied to `txns` at the commit. */
  dropRecords (base: IDBObjectStore, staged: StagedPages): void {
    base.delete(IDBKeyRange.bound(staged.start + RECORDS, staged.start + SPAN, false, true))
  }

  /** Forgets a staging (what it wrote). */
  drop (base: IDBObjectStore, staged: StagedPages): void {
    base.delete(span(staged.start))
  }
}

/**
 * A snapshot being staged: each part's entries go into pages after the
 * last one (sorted), its exactly-once records into a page of records; an
 * entry whose key is not above the last page's (a source that sent its keys
 * in another order) is kept in memory and written as a `latest` record at
 * the commit.
 */
export class StagedPages {
  readonly firsts: string[] = []
  readonly loose: Array<readonly [string, Value]> = []
  recordPages = 0
  private lastKey: string | undefined

  constructor (readonly at: Timestamp, readonly start: number) {}

  /** Writes a part in `base`'s transaction; `sizes` are its entries' encoded sizes. */
  put (base: IDBObjectStore, entries: ReadonlyArray<readonly [string, Value]>, sizes: readonly number[], txns: ReadonlyArray<readonly [string, string]>): void {
    const keyOf = (i: number): string => (entries[i] as readonly [string, Value])[0]
    const order = entries.map((_e, i) => i).sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0))
    for (let i = 1; i < order.length; i++) {
      if (keyOf(order[i] as number) === keyOf(order[i - 1] as number)) throw new TypeError(`the snapshot names key ${JSON.stringify(keyOf(order[i] as number))} twice`)
    }
    const ts = timestampPredecessor(this.at)
    let page: { keys: string[], values: Value[] } = { keys: [], values: [] }
    let bytes = 0
    const flush = (): void => {
      if (page.keys.length === 0) return
      this.firsts.push(page.keys[0] as string)
      const at = this.start + this.firsts.length - 1
      base.put(sealed('base', at, { ts, keys: page.keys, values: page.values }) satisfies BasePage, at)
      page = { keys: [], values: [] }
      bytes = 0
    }
    for (const i of order) {
      const [key, value] = entries[i] as readonly [string, Value]
      if (this.lastKey !== undefined && key <= this.lastKey) {
        this.loose.push([key, value])
        continue
      }
      this.lastKey = key
      page.keys.push(key)
      page.values.push(value)
      bytes += key.length + (sizes[i] ?? 0)
      if (page.keys.length >= PAGE_KEYS || bytes >= PAGE_BYTES) flush()
    }
    flush()
    if (txns.length === 0) return
    const at = this.start + RECORDS + this.recordPages++
    base.put(sealed('base', at, { records: txns }) satisfies RecordPage, at)
  }

  /** The staged records, page by page, read in `base`'s transaction (StoreCorruptionError for a damaged page). */
  async eachRecord (base: IDBObjectStore, visit: (id: string, record: string) => void): Promise<void> {
    for (let j = 0; j < this.recordPages; j++) {
      const at = this.start + RECORDS + j
      const page = await request(base.get(at) as IDBRequest<RecordPage | undefined>)
      if (page !== undefined && !intact('base', at, page)) throw corruption(`staged page of exactly-once records ${at}`)
      for (const [id, record] of page?.records ?? []) visit(id, record)
    }
  }
}

/** One generation of pages: their index and the ones read so far (checked). */
export class Pages {
  /** First key of each page, ascending; page `i` is stored under key `start + i`. */
  private readonly firsts: readonly string[]
  readonly start: number
  /** The index failed its check: any key may be in a page, and none can be read. */
  private readonly lost: boolean
  private readonly cache = new Map<number, BasePage>()

  constructor (firsts: readonly string[], start: number, lost = false) {
    this.firsts = firsts
    this.start = start
    this.lost = lost
  }

  /** The pages of a damaged index: reads that fall back to them fail until a snapshot import replaces them. */
  static unknown (): Pages {
    return new Pages([], 0, true)
  }

  get empty (): boolean {
    return this.firsts.length === 0 && !this.lost
  }

  /** The page that would hold `key`, if any. */
  private pageOf (key: string): number | undefined {
    let lo = 0
    let hi = this.firsts.length - 1
    let found: number | undefined
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if ((this.firsts[mid] as string) <= key) {
        found = mid
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    return found
  }

  /**
   * The snapshot's version of each of `keys` it holds (one get per page not
   * cached, all at once). A key whose page (or the index) failed its check
   * throws StoreCorruptionError naming it, or with `unknown` is added there
   * instead (GC, which leaves what it cannot read).
   */
  async lookup (base: IDBObjectStore, keys: Iterable<string>, unknown?: Set<string>): Promise<Map<string, LatestRecord>> {
    const out = new Map<string, LatestRecord>()
    if (this.empty) return out
    if (this.lost) {
      const asked = [...keys]
      if (unknown === undefined && asked.length > 0) throw corruption(`snapshot page index (read for values ${names(asked)})`)
      for (const key of asked) unknown?.add(key)
      return out
    }
    const wanted = new Map<number, string[]>()
    for (const key of keys) {
      const p = this.pageOf(key)
      if (p === undefined) continue
      const list = wanted.get(p)
      if (list === undefined) wanted.set(p, [key])
      else list.push(key)
    }
    const { pages, damaged } = await this.load(base, [...wanted.keys()])
    for (const [p, list] of wanted) {
      if (damaged.has(p)) {
        if (unknown === undefined) throw corruption(`snapshot page ${this.start + p} (read for values ${names(list)})`)
        for (const key of list) unknown.add(key)
        continue
      }
      const page = pages.get(p)
      if (page === undefined) continue
      for (const key of list) {
        const i = indexOf(page.keys, key)
        // A copy: the cached page is this store's, and a caller may change what it is given.
        if (i >= 0) out.set(key, { ts: page.ts, value: cloneValue(page.values[i] as Value) })
      }
    }
    return out
  }

  /**
   * The snapshot's entries with keys in [start, end) (end undefined: no
   * bound), ascending: the pages that can hold them, one get each not cached
   * (StoreCorruptionError for a damaged page or index).
   */
  async within (base: IDBObjectStore, start: string, end: string | undefined): Promise<Array<[string, LatestRecord]>> {
    if (this.empty) return []
    if (this.lost) throw corruption('snapshot page index')
    const from = this.pageOf(start) ?? 0
    let to = from
    while (to < this.firsts.length && (end === undefined || (this.firsts[to] as string) < end)) to++
    const wanted = Array.from({ length: to - from }, (_x, i) => from + i)
    const { pages, damaged } = await this.load(base, wanted)
    const bad = [...damaged][0]
    if (bad !== undefined) throw corruption(`snapshot page ${this.start + bad} (${this.extent(bad)})`)
    const out: Array<[string, LatestRecord]> = []
    for (const p of wanted) {
      const page = pages.get(p)
      if (page === undefined) continue
      for (let i = 0; i < page.keys.length; i++) {
        const key = page.keys[i] as string
        if (key >= start && (end === undefined || key < end)) out.push([key, { ts: page.ts, value: cloneValue(page.values[i] as Value) }])
      }
    }
    return out
  }

  /**
   * Pages `wanted`: the cached ones, and the others with one get each, all at
   * once (those intact are remembered); the ones that failed their check are
   * named in `damaged`, absent ones in neither.
   */
  private async load (base: IDBObjectStore, wanted: readonly number[]): Promise<{ pages: Map<number, BasePage>, damaged: Set<number> }> {
    const pages = new Map<number, BasePage>()
    const missing: number[] = []
    for (const p of wanted) {
      const cached = this.cache.get(p)
      if (cached === undefined) missing.push(p)
      else pages.set(p, cached)
    }
    const got = await all(missing.map(p => base.get(this.start + p) as IDBRequest<BasePage | undefined>))
    const damaged = new Set<number>()
    missing.forEach((p, i) => {
      const page = got[i]
      if (page === undefined) return
      if (!intact('base', this.start + p, page)) { damaged.add(p); return }
      this.remember(p, page)
      pages.set(p, page)
    })
    return { pages, damaged }
  }

  /** Every page's entries, ascending by key (StoreCorruptionError for a damaged page). */
  async each (base: IDBObjectStore, visit: (key: string, record: LatestRecord) => void): Promise<void> {
    if (this.empty) return
    if (this.lost) throw corruption('snapshot page index')
    await scan(base, (at, page) => {
      if (!intact('base', at, page)) throw corruption(`snapshot page ${at as number} (${this.extent((at as number) - this.start)})`)
      const p = page as BasePage
      for (let i = 0; i < p.keys.length; i++) visit(p.keys[i] as string, { ts: p.ts, value: p.values[i] })
    }, IDBKeyRange.bound(this.start, this.start + this.firsts.length - 1))
  }

  /** The values page `p` holds, by the index: from its first key to the next page's. */
  private extent (p: number): string {
    const next = this.firsts[p + 1]
    return `values from ${JSON.stringify(this.firsts[p] ?? '')}${next === undefined ? ' on' : ` below ${JSON.stringify(next)}`}`
  }

  private remember (p: number, page: BasePage): void {
    if (this.cache.size >= CACHED_PAGES) this.cache.delete(this.cache.keys().next().value as number)
    this.cache.set(p, page)
  }
}

function indexOf (keys: readonly string[], key: string): number {
  let lo = 0
  let hi = keys.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const k = keys[mid] as string
    if (k === key) return mid
    if (k < key) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}
