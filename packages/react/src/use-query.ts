import { useMemo, useSyncExternalStore } from 'react'
import { queryMatcher, type Changes, type Query, type QueryOptions, type Timestamp, type Value } from '@tideline/db'
import { useDatabase, type AnyDatabase } from './context.js'
import { pendingCalls } from './pending.js'

/**
 * `loading`: nothing read yet. `syncing`: showing this replica's state, which
 * may still lack what the group committed before the query started (a new or
 * offline tab). `live`: the replica has everything committed before the
 * query started, and follows every commit after.
 */
export type QueryStatus = 'loading' | 'syncing' | 'live'

export interface QueryState {
  readonly status: QueryStatus
  /** A call this page made through `useCall` that may write one of the query's keys is still in flight. */
  readonly pending: boolean
  /** The timestamp the rows are as of (undefined while loading). */
  readonly ts: Timestamp | undefined
  /** Which keys the last change added, updated and removed. */
  readonly changes: Changes | undefined
  /** Keys whose shown value (or absence) is what an optimistic call in flight expects, not yet final. */
  readonly speculative: readonly string[]
  /** The last error reading the query (it keeps the last rows). */
  readonly error: Error | undefined
}

export interface UseQueryOptions extends QueryOptions {
  /** The database (default: the nearest TidelineProvider's). */
  readonly db?: AnyDatabase
}

/** The query's rows as `[key, value]` in order (a range's key order, a key list's list order); undefined while loading. */
export type Rows<T> = ReadonlyArray<readonly [string, T]>

interface Snapshot<T> {
  readonly rows: Rows<T> | undefined
  readonly state: QueryState
}

/** How long to wait before asking again whether the replica is synced, after an attempt failed (offline). */
const SYNC_RETRY_MS = 2_000

/** One query's live result: a subscription to the database, kept while a component shows it. */
class QueryStore<T> {
  private snap: Snapshot<T> = { rows: undefined, state: { status: 'loading', pending: false, ts: undefined, changes: undefined, speculative: [], error: undefined } }
  private readonly listeners = new Set<() => void>()
  private stop: (() => void) | undefined
  private synced = false
  private retry: ReturnType<typeof setTimeout> | undefined
  private readonly matches: (key: string) => boolean

  constructor (private readonly db: AnyDatabase, private readonly query: Query, private readonly options: QueryOptions) {
    this.matches = queryMatcher(query, options)
  }

  readonly snapshot = (): Snapshot<T> => this.snap

  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener)
    if (this.listeners.size === 1) this.start()
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) this.end()
    }
  }

  private start (): void {
    const pending = pendingCalls(this.db)
    const unpend = pending.subscribe(() => { this.set({ pending: pending.touches(this.matches) }) })
    let unsubscribe: () => void
    try {
      unsubscribe = this.db.subscribe(this.query, (_values, ts, update) => {
        this.snap = { rows: update.entries as Rows<T>, state: { ...this.snap.state, status: this.synced ? 'live' : 'syncing', ts, changes: update.changes, speculative: update.pending, error: undefined } }
        this.emit()
      }, { ...this.options, onError: (error: Error) => { this.set({ error }) } })
    } catch (err) {
      // Refused at once (a partition this tab does not follow): the hook shows the error.
      unpend()
      this.set({ error: err as Error })
      return
    }
    this.stop = () => { unpend(); unsubscribe() }
    this.set({ pending: pending.touches(this.matches) })
    this.waitSynced()
  }

  private waitSynced (): void {
    this.db.synced().then(() => {
      if (this.stop === undefined) return
      this.synced = true
      if (this.snap.rows !== undefined) this.set({ status: 'live' })
    }, () => {
      if (this.stop === undefined) return
      this.retry = setTimeout(() => { this.waitSynced() }, SYNC_RETRY_MS)
    })
  }

  private end (): void {
    this.stop?.()
    this.stop = undefined
    clearTimeout(this.retry)
  }

  private set (change: Partial<QueryState>): void {
    if (Object.entries(change).every(([k, v]) => this.snap.state[k as keyof QueryState] === v)) return
    this.snap = { rows: this.snap.rows, state: { ...this.snap.state, ...change } }
    this.emit()
  }

  private emit (): void {
    for (const l of this.listeners) l()
  }
}

/**
 * The live rows of a query (a list of keys, `{ prefix }` or `{ start, end }`,
 * with `limit` and `reverse`) from this tab's replica, and their state:
 * `[rows, { status, pending, ts, changes, error }]`. Re-renders after every
 * evaluated run that changes them; works offline. The query is compared by
 * value, so an inline literal does not subscribe again on every render.
 */
export function useQuery<T = Value> (query: Query, options: UseQueryOptions = {}): [Rows<T> | undefined, QueryState] {
  const db = useDatabase(options.db)
  const identity = JSON.stringify([query, options.limit ?? null, options.reverse ?? false])
  // `identity` stands for the query and options: a new store only when they change by value.
  const store = useMemo(() => new QueryStore<T>(db, query, { ...(options.limit === undefined ? {} : { limit: options.limit }), ...(options.reverse === undefined ? {} : { reverse: options.reverse }) }), [db, identity])
  const snap = useSyncExternalStore(store.subscribe, store.snapshot, store.snapshot)
  return [snap.rows, snap.state]
}
