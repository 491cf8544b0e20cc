import type { Durability, Settlement, Store, StoreBatch, Version } from './store.js'
import type { Timestamp } from './timestamp.js'
import type { Outcome, Thunk } from './types.js'
import { cloneValue, type Value } from './value.js'

export interface MemoryStoreInit {
  /**
   * Keep the journal of durable batches so `recover()` can rebuild what a
   * crash would leave. Off in benchmarks to save the copies.
   * @default false
   */
  readonly journal?: boolean
  /**
   * Called before each write is applied; the write lands (atomically) when it
   * resolves. The simulator uses it to give writes latency and to crash peers
   * while writes are in flight.
   * @default undefined (writes apply at once)
   */
  readonly delay?: (batch: StoreBatch) => Promise<void> | undefined
}

interface Disk {
  /** Batches known durable, in order. */
  readonly durable: StoreBatch[]
  /** Relaxed batches applied but not yet durable. */
  relaxed: StoreBatch[]
}

/** Binary search: index of the last entry with ts < below, or -1. */
function lastBelow (versions: readonly Version[], below: Timestamp): number {
  let lo = 0
  let hi = versions.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((versions[mid] as Version).ts < below) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}

/**
 * An in-memory Store with an explicit line between what is persisted and what
 * a crash loses: with `journal`, `recover()` returns the store a restarted
 * peer would find (every strict batch and the relaxed ones before it).
 */
export class MemoryStore implements Store {
  private readonly versions = new Map<string, Version[]>()
  /** Every thunk by timestamp, with its outcome once settled. */
  private readonly thunks = new Map<Timestamp, { readonly thunk: Thunk, outcome: Outcome | undefined }>()
  /** coordinator → epoch → seq → thunk, for gap fill. */
  private readonly bySeq = new Map<string, Map<number, Map<number, Thunk>>>()
  private readonly meta = new Map<string, Value>()
  private readonly txns = new Map<string, string>()
  private readonly disk: Disk | undefined
  private readonly delay: MemoryStoreInit['delay']
  private crashed = false
  private closed = false

  constructor (init: MemoryStoreInit = {}) {
    this.disk = init.journal === true ? { durable: [], relaxed: [] } : undefined
    this.delay = init.delay
  }

  async write (batch: StoreBatch): Promise<void> {
    const wait = this.delay?.(batch)
    if (wait !== undefined) await wait
    // A write still in flight when its peer crashed never lands and never answers.
    if (this.crashed) return new Promise<void>(() => {})
    if (this.closed) throw new Error('store closed')
    this.apply(batch)
    if (this.disk !== undefined) this.record(batch, batch.durability ?? 'strict')
  }

  private record (batch: StoreBatch, durability: Durability): void {
    const disk = this.disk as Disk
    if (durability === 'relaxed') {
      disk.relaxed.push(batch)
      return
    }
    disk.durable.push(...disk.relaxed, batch)
    disk.relaxed = []
  }

  private apply (batch: StoreBatch): void {
    let seqs: Map<number, Thunk> | undefined
    let seqsOf = ''
    let seqsEpoch = -1
    for (const thunk of batch.thunks ?? []) {
      if (this.thunks.has(thunk.ts)) continue
      this.thunks.set(thunk.ts, { thunk, outcome: undefined })
      if (seqs === undefined || seqsOf !== thunk.coordinator || seqsEpoch !== thunk.epoch) {
        seqsOf = thunk.coordinator
        seqsEpoch = thunk.epoch
        seqs = this.sequence(thunk.coordinator, thunk.epoch)
      }
      seqs.set(thunk.seq, thunk)
    }
    for (const s of batch.settle ?? []) this.settleOne(s)
    for (const [name, value] of batch.meta ?? []) this.meta.set(name, cloneValue(value))
    for (const [id, record] of batch.txns ?? []) if (!this.txns.has(id)) this.txns.set(id, record)
  }

  private sequence (coordinator: string, epoch: number): Map<number, Thunk> {
    let epochs = this.bySeq.get(coordinator)
    if (epochs === undefined) { epochs = new Map(); this.bySeq.set(coordinator, epochs) }
    let seqs = epochs.get(epoch)
    if (seqs === undefined) { seqs = new Map(); epochs.set(epoch, seqs) }
    return seqs
  }

  private settleOne (s: Settlement): void {
    const entry = this.thunks.get(s.ts)
    if (entry?.outcome !== undefined) return
    if (entry !== undefined) entry.outcome = s.outcome
    for (const [key, value] of s.writes) {
      let list = this.versions.get(key)
      if (list === undefined) {
        list = []
        this.versions.set(key, list)
      }
      const version: Version = { ts: s.ts, value: typeof value === 'object' && value !== null ? cloneValue(value) : value }
      const last = list[list.length - 1]
      if (last === undefined || last.ts < s.ts) {
        list.push(version)
      } else {
        list.splice(lastBelow(list, s.ts) + 1, 0, version)
      }
    }
  }

  async latest (key: string, below: Timestamp): Promise<Version | undefined> {
    const list = this.versions.get(key)
    if (list === undefined) return undefined
    const v = list[lastBelow(list, below)]
    return v === undefined ? undefined : { ts: v.ts, value: cloneValue(v.value) }
  }

  async latestValues (keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>> {
    const out: Array<Value | undefined> = []
    for (const key of keys) {
      const list = this.versions.get(key)
      if (list === undefined) { out.push(undefined); continue }
      const last = list[list.length - 1] as Version
      const v = last.ts < below ? last : list[lastBelow(list, below)]
      out.push(v === undefined ? undefined : cloneValue(v.value))
    }
    return out
  }

  async txnRecords (clientTxnIds: readonly string[]): Promise<Array<string | undefined>> {
    return clientTxnIds.map(id => this.txns.get(id))
  }

  async thunkRange (coordinator: string, epoch: number, from: number, to: number): Promise<Thunk[]> {
    const out: Thunk[] = []
    const seqs = this.bySeq.get(coordinator)?.get(epoch)
    if (seqs === undefined) return out
    for (let seq = Math.max(1, from); seq <= to; seq++) {
      const t = seqs.get(seq)
      if (t !== undefined) out.push(t)
    }
    return out
  }

  async unsettled (): Promise<Thunk[]> {
    const out: Thunk[] = []
    for (const { thunk, outcome } of this.thunks.values()) if (outcome === undefined) out.push(thunk)
    return out.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0))
  }

  async outcome (ts: Timestamp): Promise<Outcome | undefined> {
    return this.thunks.get(ts)?.outcome
  }

  async getMeta (name: string): Promise<Value | undefined> {
    return cloneValue(this.meta.get(name))
  }

  async entries (below: Timestamp): Promise<Array<[string, Value]>> {
    const out: Array<[string, Value]> = []
    for (const key of [...this.versions.keys()].sort()) {
      const list = this.versions.get(key) as Version[]
      const v = list[lastBelow(list, below)]
      if (v !== undefined && v.value !== undefined) out.push([key, cloneValue(v.value)])
    }
    return out
  }

  async close (): Promise<void> {
    this.closed = true
  }

  /** Counts, for tests of growth and GC. */
  stats (): { keys: number, versions: number, thunks: number } {
    let versions = 0
    for (const list of this.versions.values()) versions += list.length
    return { keys: this.versions.size, versions, thunks: this.thunks.size }
  }

  /**
   * Simulates a crash: this instance stops answering, and the returned store
   * holds exactly what was durable. Needs `journal`.
   */
  crashAndRecover (init: Omit<MemoryStoreInit, 'journal'> = {}): MemoryStore {
    if (this.disk === undefined) throw new Error('crashAndRecover needs a journal')
    this.crashed = true
    const next = new MemoryStore({ ...init, journal: true })
    for (const batch of this.disk.durable) {
      next.apply(batch)
      ;(next.disk as Disk).durable.push(batch)
    }
    return next
  }
}
