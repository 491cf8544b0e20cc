import { latestOf } from './checks.js'
import { MAX_RANGE_BACKOFF, RANGE_ROWS_PER_KEY } from './constants.js'
import { all, rows } from './requests.js'
import type { LatestRecord, LatestRow } from './schema.js'

/**
 * Reads the newest versions of the keys a settlement batch writes, in its
 * transaction, in as few requests as it can: each is an IPC round trip in
 * Chromium, where a get per key costs more than the puts that follow.
 *
 * Keys a batch writes often lie close together (a run touches neighbouring
 * keys, or the same ones again), so the first try is one range read over
 * them, capped at RANGE_ROWS_PER_KEY rows per key; the keys past a full
 * chunk are read one get each, all at once. When a range read falls short
 * like that (keys spread over a large store), the next batches read key by
 * key straight away instead of paying for rows nobody needs: one after a
 * single shortfall (a batch whose keys wrap around), twice as many after each
 * further one in a row, up to MAX_RANGE_BACKOFF.
 *
 * Each record is checked: a damaged newest version of a written key throws
 * StoreCorruptionError (the write fails rather than replace a version it
 * cannot read, which may even be newer than the one it writes).
 */
export class NewestReader {
  /** Batches left to read key by key. */
  private skip = 0
  /** How many the next shortfall skips: doubled by each shortfall in a row, reset by a range read that sufficed. */
  private backoff = 0

  /** `keys` ascending and distinct. */
  async read (latest: IDBObjectStore, keys: readonly string[]): Promise<Map<string, LatestRecord>> {
    const out = new Map<string, LatestRecord>()
    let rest: readonly string[] = keys
    if (keys.length > 1 && this.skip > 0) {
      this.skip--
    } else if (keys.length > 1) {
      const cap = keys.length * RANGE_ROWS_PER_KEY
      const got = await rows(latest, IDBKeyRange.bound(keys[0], keys[keys.length - 1]), cap)
      let i = 0
      for (const [key, value] of got) {
        while (i < keys.length && (keys[i] as string) < (key as string)) i++
        if (keys[i] === key) out.set(key, latestOf(key, value))
      }
      const last = got[got.length - 1]
      if (got.length < cap || last === undefined) {
        this.backoff = 0
        return out
      }
      rest = keys.filter(k => k > (last[0] as string))
      this.backoff = Math.min(Math.max(1, this.backoff * 2), MAX_RANGE_BACKOFF)
      this.skip = this.backoff
    }
    if (rest.length > 0) {
      const got = await all(rest.map(k => latest.get(k) as IDBRequest<LatestRow | undefined>))
      for (let i = 0; i < rest.length; i++) {
        const v = got[i]
        const key = rest[i] as string
        if (v !== undefined) out.set(key, latestOf(key, v))
      }
    }
    return out
  }
}
