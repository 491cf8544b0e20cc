import { canonical, checkRangeRead, inRange, keyRangeOf, type KeyQuery, type RangeRead, type Timestamp, type Value } from '@tideline/core'

/** What an app reads or subscribes to: a list of keys, or a range of keys (`{ prefix }` or `{ start, end }`). */
export type Query = readonly string[] | KeyQuery

/** How much of a range a read or subscription takes, and from which end (ignored for a list of keys). */
export interface QueryOptions {
  /** At most this many live keys. @default no limit */
  readonly limit?: number
  /** From the last key down. @default false */
  readonly reverse?: boolean
}

/** Which keys changed between two results of a subscription (the first result: every key added). */
export interface Changes {
  readonly added: readonly string[]
  readonly updated: readonly string[]
  readonly removed: readonly string[]
}

/** What a subscription's callback gets besides the values: the result in order, and what changed since the last call. */
export interface SubscriptionUpdate {
  /** The live keys and values: a range's in its order, a key list's in the list's order. */
  readonly entries: ReadonlyArray<readonly [string, Value]>
  readonly changes: Changes
  /** Keys whose shown value (or absence) is what this tab's optimistic calls in flight expect, not yet final. */
  readonly pending: readonly string[]
}

export type SubscriptionCallback = (values: Readonly<Record<string, Value>>, ts: Timestamp, update: SubscriptionUpdate) => void

/** A query as the replica's read takes it: the keys, or a checked range read (InvalidArgumentError for a bad one). */
export function readTarget (query: Query, options: QueryOptions = {}): readonly string[] | RangeRead {
  if (Array.isArray(query)) return query as readonly string[]
  return checkRangeRead({ range: keyRangeOf(query as KeyQuery), ...(options.limit === undefined ? {} : { limit: options.limit }), ...(options.reverse === undefined ? {} : { reverse: options.reverse }) })
}

/** Whether a write to `key` can change the query's result. */
export function matcherOf (target: readonly string[] | RangeRead): (key: string) => boolean {
  if (Array.isArray(target)) {
    const set = new Set(target as readonly string[])
    return key => set.has(key)
  }
  const range = (target as RangeRead).range
  return key => inRange(key, range)
}

/** Whether a write to `key` can change what `query` answers (InvalidArgumentError for a bad query). */
export function queryMatcher (query: Query, options: QueryOptions = {}): (key: string) => boolean {
  return matcherOf(readTarget(query, options))
}

/** A read's entries in order: a range's as read, a key list's in the list's order. */
export function entriesOf (target: readonly string[] | RangeRead, values: Readonly<Record<string, Value>>, entries: ReadonlyArray<readonly [string, Value]> | undefined): ReadonlyArray<readonly [string, Value]> {
  if (entries !== undefined) return entries
  const keys = Array.isArray(target) ? [...new Set(target as readonly string[])] : []
  return keys.filter(k => Object.hasOwn(values, k)).map(k => [k, values[k] as Value] as const)
}

/** The keys added, updated (by value) and removed between two results (by canonical text). */
export function changesBetween (before: ReadonlyMap<string, string> | undefined, entries: ReadonlyArray<readonly [string, Value]>): { changes: Changes, now: Map<string, string> } {
  const now = new Map(entries.map(([k, v]) => [k, canonical(v)]))
  const added: string[] = []
  const updated: string[] = []
  for (const [k, text] of now) {
    const was = before?.get(k)
    if (was === undefined) added.push(k)
    else if (was !== text) updated.push(k)
  }
  const removed = before === undefined ? [] : [...before.keys()].filter(k => !now.has(k))
  return { changes: { added, updated, removed }, now }
}
