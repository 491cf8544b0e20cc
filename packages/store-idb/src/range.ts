import { rangeLimit, type KeyRange, type RangeOptions, type Value, type Version } from '@tideline/core'
import type { Pages } from './base.js'
import { latestOf } from './checks.js'
import { all, request, rows } from './requests.js'
import type { LatestRecord } from './schema.js'

/** Rows read per request while looking for `limit` live keys. */
const CHUNK = 256

/**
 * A range read in one transaction over `latest` and the snapshot's pages:
 * the keys in key order (a key's `latest` record shadows its page entry),
 * each resolved by `version` (the store's window) at the read's timestamp,
 * until `limit` live ones. Forward, `latest` is read in chunks of rows;
 * reversed (IndexedDB's getAll only goes up), its keys are read at once and
 * their rows in chunks from the top.
 */
export async function rangeIn (
  tx: IDBTransaction, pages: Pages, range: KeyRange, options: RangeOptions | undefined,
  version: (key: string, newest: LatestRecord | undefined) => Version | undefined
): Promise<Array<[string, Value]>> {
  const limit = rangeLimit(options)
  const out: Array<[string, Value]> = []
  if (range.end !== undefined && range.end <= range.start) return out
  const latest = tx.objectStore('latest')
  const bound = range.end === undefined ? IDBKeyRange.lowerBound(range.start) : IDBKeyRange.bound(range.start, range.end, false, true)
  const paged = await pages.within(tx.objectStore('base'), range.start, range.end)
  const reverse = options?.reverse === true
  if (reverse) paged.reverse()
  let p = 0
  /** Takes a key's answer; true once `limit` live keys are in. */
  const take = (key: string, newest: LatestRecord | undefined): boolean => {
    const v = version(key, newest)
    if (v?.value !== undefined) out.push([key, v.value])
    return out.length >= limit
  }
  /** Page entries before `key` in the read's direction (all that are left with undefined); true once full. */
  const pagesBefore = (key: string | undefined): boolean => {
    for (; p < paged.length; p++) {
      const [k, record] = paged[p] as [string, LatestRecord]
      if (key !== undefined && (reverse ? k <= key : k >= key)) break
      if (take(k, record)) return true
    }
    if (key !== undefined && paged[p]?.[0] === key) p++
    return false
  }
  const visit = (chunk: ReadonlyArray<readonly [string, unknown]>): boolean => {
    for (const [key, row] of chunk) if (pagesBefore(key) || take(key, latestOf(key, row))) return true
    return false
  }
  if (!reverse) {
    let next: IDBKeyRange = bound
    for (;;) {
      const chunk = (await rows(latest, next, CHUNK)) as Array<[string, unknown]>
      if (visit(chunk)) return out
      const last = chunk[chunk.length - 1]
      if (chunk.length < CHUNK || last === undefined) break
      next = range.end === undefined ? IDBKeyRange.lowerBound(last[0], true) : IDBKeyRange.bound(last[0], range.end, true, true)
    }
  } else {
    const keys = (await request(latest.getAllKeys(bound))) as string[]
    for (let hi = keys.length; hi > 0; hi -= CHUNK) {
      const chunk = keys.slice(Math.max(0, hi - CHUNK), hi).reverse()
      const got = await all(chunk.map(k => latest.get(k) as IDBRequest<unknown>))
      if (visit(chunk.map((k, i) => [k, got[i]] as const))) return out
    }
  }
  pagesBefore(undefined)
  return out
}
