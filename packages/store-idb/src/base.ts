import { cloneValue, type Timestamp, type Value } from '@tideline/core'
import { all, request, scan } from './requests.js'
import type { BasePage, LatestRecord } from './schema.js'

/** Most values one page holds, and most bytes of them (roughly): a put per page, not per key. */
const PAGE_KEYS = 256
const PAGE_BYTES = 256 * 1024
/** Pages kept decoded in memory for reads (each up to about PAGE_BYTES). */
const CACHED_PAGES = 16
/** The `base` key of the record that lists every page's first key (pages are keyed 0, 1, …). */
export const BASE_INDEX_KEY = -1

/**
 * A snapshot's values as pages: what `importSnapshot` writes instead of one
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
 */
export class BaseLayer {
  private gen: Pages = new Pages([])

  /**
   * The pages as a transaction created now sees them: take it in the same
   * tick as the transaction, since an import issued meanwhile replaces them
   * for every transaction created after it (and not for those before).
   */
  get current (): Pages {
    return this.gen
  }

  /** Reads the page index (at open). */
  async load (base: IDBObjectStore): Promise<void> {
    const index = await request(base.get(BASE_INDEX_KEY) as IDBRequest<{ firsts: string[] } | undefined>)
    this.gen = new Pages(index?.firsts ?? [])
  }

  /**
   * Writes `entries` (ascending by key, with their encoded sizes) as pages as of `ts`, in `base`'s
   * transaction (already cleared), and makes them current for every transaction created from now on.
   */
  write (base: IDBObjectStore, entries: ReadonlyArray<readonly [string, Value]>, sizes: readonly number[], ts: Timestamp): void {
    const firsts: string[] = []
    let page: { keys: string[], values: Value[] } = { keys: [], values: [] }
    let bytes = 0
    const flush = (): void => {
      if (page.keys.length === 0) return
      firsts.push(page.keys[0] as string)
      base.put({ ts, keys: page.keys, values: page.values } satisfies BasePage, firsts.length - 1)
      page = { keys: [], values: [] }
      bytes = 0
    }
    entries.forEach(([key, value], i) => {
      page.keys.push(key)
      page.values.push(value)
      bytes += key.length + (sizes[i] ?? 0)
      if (page.keys.length >= PAGE_KEYS || bytes >= PAGE_BYTES) flush()
    })
    flush()
    base.put({ firsts }, BASE_INDEX_KEY)
    this.gen = new Pages(firsts)
  }
}

/** One generation of pages: their index and the ones read so far. */
export class Pages {
  /** First key of each page, ascending; page `i` is stored under key `i`. */
  private readonly firsts: readonly string[]
  private readonly cache = new Map<number, BasePage>()

  constructor (firsts: readonly string[]) {
    this.firsts = firsts
  }

  get empty (): boolean {
    return this.firsts.length === 0
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

  /** The snapshot's version of each of `keys` it holds (one get per page not cached, all at once). */
  async lookup (base: IDBObjectStore, keys: Iterable<string>): Promise<Map<string, LatestRecord>> {
    const out = new Map<string, LatestRecord>()
    if (this.empty) return out
    const wanted = new Map<number, string[]>()
    for (const key of keys) {
      const p = this.pageOf(key)
      if (p === undefined) continue
      const list = wanted.get(p)
      if (list === undefined) wanted.set(p, [key])
      else list.push(key)
    }
    const missing = [...wanted.keys()].filter(p => !this.cache.has(p))
    const got = await all(missing.map(p => base.get(p) as IDBRequest<BasePage | undefined>))
    missing.forEach((p, i) => { const page = got[i]; if (page !== undefined) this.remember(p, page) })
    for (const [p, list] of wanted) {
      const page = this.cache.get(p)
      if (page === undefined) continue
      for (const key of list) {
        const i = indexOf(page.keys, key)
        // A copy: the cached page is this store's, and a caller may change what it is given.
        if (i >= 0) out.set(key, { ts: page.ts, value: cloneValue(page.values[i] as Value) })
      }
    }
    return out
  }

  /** Every page's entries, ascending by key. */
  async each (base: IDBObjectStore, visit: (key: string, record: LatestRecord) => void): Promise<void> {
    if (this.empty) return
    await scan(base, (_id, page) => {
      const p = page as BasePage
      for (let i = 0; i < p.keys.length; i++) visit(p.keys[i] as string, { ts: p.ts, value: p.values[i] })
    }, IDBKeyRange.lowerBound(0))
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
