import { InvalidArgumentError } from './errors.js'

/**
 * The keys from `start` (inclusive) up to `end` (exclusive; absent: to the
 * last key), in JavaScript string order: by UTF-16 code unit, the order
 * IndexedDB, LevelStore's key encoding and `Array.prototype.sort` share.
 */
export interface KeyRange {
  readonly start: string
  readonly end?: string | undefined
}

/** How much of a range to read, and from which end. */
export interface RangeOptions {
  /** At most this many live keys (a positive integer). @default no limit */
  readonly limit?: number | undefined
  /** From the last key down. @default false */
  readonly reverse?: boolean | undefined
}

/** A range as an app writes it: every key under a prefix, or from `start` up to `end`. */
export type KeyQuery = { readonly prefix: string } | KeyRange

/**
 * The least string above every string that starts with `prefix` (undefined:
 * none, for the empty prefix or one of only U+FFFF), so a prefix is the
 * half-open range [prefix, prefixEnd(prefix)).
 */
export function prefixEnd (prefix: string): string | undefined {
  let i = prefix.length - 1
  while (i >= 0 && prefix.charCodeAt(i) === 0xffff) i--
  if (i < 0) return undefined
  return prefix.slice(0, i) + String.fromCharCode(prefix.charCodeAt(i) + 1)
}

/** Checks a query's shape (InvalidArgumentError, naming what is wrong) and answers it as a KeyRange. */
export function keyRangeOf (query: KeyQuery): KeyRange {
  if (typeof query !== 'object' || query === null) throw new InvalidArgumentError('a key range is { prefix } or { start, end }')
  if ('prefix' in query) {
    if (typeof query.prefix !== 'string') throw new InvalidArgumentError('a key range\'s prefix must be a string')
    const end = prefixEnd(query.prefix)
    return end === undefined ? { start: query.prefix } : { start: query.prefix, end }
  }
  if (typeof query.start !== 'string') throw new InvalidArgumentError('a key range\'s start must be a string')
  if (query.end !== undefined && typeof query.end !== 'string') throw new InvalidArgumentError('a key range\'s end must be a string or absent')
  return query.end === undefined ? { start: query.start } : { start: query.start, end: query.end }
}

/** Checks range options (InvalidArgumentError) and answers the limit as a number (Infinity: none). */
export function rangeLimit (options: RangeOptions | undefined): number {
  const limit = options?.limit
  if (limit === undefined) return Infinity
  if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidArgumentError(`a range's limit must be a positive integer, got ${String(limit)}`)
  return limit
}

/** Whether `key` lies in `range`. */
export function inRange (key: string, range: KeyRange): boolean {
  return key >= range.start && (range.end === undefined || key < range.end)
}

/**
 * The keys of an ascending array that lie in `range`, as [from, to) indices
 * (binary search).
 */
export function sortedSlice (keys: readonly string[], range: KeyRange): [from: number, to: number] {
  const first = (bound: string): number => {
    let lo = 0
    let hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((keys[mid] as string) < bound) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const from = first(range.start)
  const to = range.end === undefined ? keys.length : Math.max(from, first(range.end))
  return [from, to]
}
