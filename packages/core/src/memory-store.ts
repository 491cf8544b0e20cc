import type { BatchRange, Durability, GcResult, Settlement, Store, StoreBatch, StoreSnapshot, Version } from './store.js'
import { DamageSet } from './memory-damage.js'
import { rangeLimit, sortedSlice, type KeyRange, type RangeOptions } from './key-range.js'
import { SortedKeyMap, keysAfter, lastBelow } from './sorted-keys.js'
import { SnapshotTooOldError, StoreFailedError } from './errors.js'
import { TS_ZERO, timestampPredecessor, type Timestamp } from './timestamp.js'
import type { Batch, Outcome, Thunk } from './types.js'
import { checkValue, cloneValue, type Value } from './value.js'

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

/** What the journal records: batches, and the strict whole-store operations. */
type Entry =
  | { readonly kind: 'batch', readonly batch: StoreBatch }
  | { readonly kind: 'import', readonly snapshot: StoreSnapshot }
  | { readonly kind: 'gc', readonly horizon: Timestamp, readonly records: Timestamp | undefined, readonly limit: number, readonly from: { readonly latest?: string | undefined, readonly txns?: string | undefined } }

interface Disk {
  /** Entries known durable, in order. */
  readonly durable: Entry[]
  /** Relaxed batches applied but not yet durable. */
  relaxed: Entry[]
}

/** Refuses a batch holding anything that is not a Value before any of it is applied. */
export function checkBatch (batch: StoreBatch): void {
  for (const s of batch.settle ?? []) for (const [, v] of s.writes) if (v !== undefined) checkValue(v, Infinity)
  for (const [, v] of batch.meta ?? []) checkValue(v, Infinity)
  for (const b of batch.batches ?? []) for (const t of b.thunks) checkValue(t.args, Infinity)
}

/**
 * An in-memory Store with an explicit line between what is persisted and what
 * a crash loses: with `journal`, `recover()` returns the store a restarted
 * peer would find (every strict batch and the relaxed ones before it).
 */
export class MemoryStore implements Store {
  private readonly versions = new SortedKeyMap<Version[]>()
  /** Settled thunks' outcomes by timestamp. */
  private readonly outcomes = new Map<Timestamp, Outcome>()
  /** coordinator → epoch → seq → batch. */
  private readonly bySeq = new Map<string, Map<number, Map<number, Batch>>>()
  private readonly meta = new Map<string, Value>()
  private readonly txns = new Map<string, string>()
  private readonly disk: Disk | undefined
  private readonly delay: MemoryStoreInit['delay']
  private crashed = false
  private closed = false
  /** Records a test or the simulator damaged (`damaged.add(target)`): see DamageSet. */
  readonly damaged = new DamageSet()

  constructor (init: MemoryStoreInit = {}) {
    this.disk = init.journal === true ? { durable: [], relaxed: [] } : undefined
    this.delay = init.delay
  }

  async write (batch: StoreBatch): Promise<void> {
    const wait = this.delay?.(batch)
    if (wait !== undefined) await wait
    // A write still in flight when its peer crashed never lands and never answers.
    if (this.crashed) return new Promise<void>(() => {})
    this.writeSync(batch)
  }

  /**
   * The synchronous face: the simulator carries out a peer's store effects
   * inside its event loop, with the latency it models itself, so it neither
   * awaits nor waits for promise chains between events.
   */
  writeSync (batch: StoreBatch): void {
    if (this.closed) throw new StoreFailedError('store closed')
    checkBatch(batch)
    this.apply(batch)
    this.record({ kind: 'batch', batch }, batch.durability ?? 'strict')
  }

  private record (entry: Entry, durability: Durability): void {
    const disk = this.disk
    if (disk === undefined) return
    if (durability === 'relaxed') {
      disk.relaxed.push(entry)
      return
    }
    disk.durable.push(...disk.relaxed, entry)
    disk.relaxed = []
  }

  private replay (entry: Entry): void {
    if (entry.kind === 'batch') this.apply(entry.batch)
    else if (entry.kind === 'import') this.load(entry.snapshot)
    else this.collect(entry.horizon, entry.records, entry.limit, { ...entry.from })
  }

  private apply (batch: StoreBatch): void {
    for (const b of batch.batches ?? []) {
      const seqs = this.sequence(b.coordinator, b.epoch)
      const id = `b|${b.coordinator}|${b.epoch}|${b.seq}`
      if (!seqs.has(b.seq) || this.damaged.has(id)) seqs.set(b.seq, b)
      this.damaged.repaired(id)
    }
    for (const s of batch.settle ?? []) this.settleOne(s)
    for (const [name, value] of batch.meta ?? []) { this.meta.set(name, cloneValue(value)); this.damaged.repaired(`m|${name}`) }
    for (const [id, record] of batch.txns ?? []) if (!this.txns.has(id)) this.txns.set(id, record)
  }

  private sequence (coordinator: string, epoch: number): Map<number, Batch> {
    let epochs = this.bySeq.get(coordinator)
    if (epochs === undefined) { epochs = new Map(); this.bySeq.set(coordinator, epochs) }
    let seqs = epochs.get(epoch)
    if (seqs === undefined) { seqs = new Map(); epochs.set(epoch, seqs) }
    return seqs
  }

  private settleOne (s: Settlement): void {
    if (this.outcomes.has(s.ts)) return
    this.outcomes.set(s.ts, s.outcome)
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

  /**
   * Reads below this may need versions GC or a snapshot import removed: one
   * whose key holds no version below it is refused (SnapshotTooOldError),
   * never answered as if the key had been absent.
   */
  private floor: Timestamp = TS_ZERO
  /** Where the GC pass under way stands (bounded steps resume there). */
  private gcPass: { latest?: string | undefined, txns?: string | undefined } = {}

  private checkFloor (key: string, list: readonly Version[] | undefined, below: Timestamp): void {
    if (below >= this.floor || (list !== undefined && (list[0] as Version).ts < below)) return
    throw new SnapshotTooOldError(`a read of ${JSON.stringify(key)} below ${below} needs history this store no longer holds (below ${this.floor})`)
  }

  async latest (key: string, below: Timestamp): Promise<Version | undefined> {
    const list = this.versions.get(key)
    this.checkFloor(key, list, below)
    this.damaged.check(`v|${key}`)
    if (list === undefined) return undefined
    const v = list[lastBelow(list, below)]
    return v === undefined ? undefined : { ts: v.ts, value: cloneValue(v.value) }
  }

  async latestValues (keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>> {
    return this.latestValuesSync(keys, below)
  }

  latestValuesSync (keys: readonly string[], below: Timestamp): Array<Value | undefined> {
    const out: Array<Value | undefined> = []
    for (const key of keys) {
      const list = this.versions.get(key)
      this.checkFloor(key, list, below)
      this.damaged.check(`v|${key}`)
      if (list === undefined) { out.push(undefined); continue }
      const last = list[list.length - 1] as Version
      const v = last.ts < below ? last : list[lastBelow(list, below)]
      out.push(v === undefined ? undefined : cloneValue(v.value))
    }
    return out
  }

  async txnRecords (clientTxnIds: readonly string[]): Promise<Array<string | undefined>> {
    return this.txnRecordsSync(clientTxnIds)
  }

  txnRecordsSync (clientTxnIds: readonly string[]): Array<string | undefined> {
    return clientTxnIds.map(id => { this.damaged.check(`x|${id}`); return this.txns.get(id) })
  }

  async batchRange (coordinator: string, epoch: number, from: number, to: number): Promise<BatchRange> {
    return this.batchRangeSync(coordinator, epoch, from, to)
  }

  batchRangeSync (coordinator: string, epoch: number, from: number, to: number): BatchRange {
    const seqs = this.bySeq.get(coordinator)?.get(epoch)
    const found: Batch[] = []
    if (seqs !== undefined && to - from < seqs.size) {
      for (let seq = Math.max(1, from); seq <= to; seq++) {
        const b = seqs.get(seq)
        if (b !== undefined) found.push(b)
      }
    } else if (seqs !== undefined) {
      for (const b of seqs.values()) if (b.seq >= from && b.seq <= to) found.push(b)
      found.sort((a, b) => a.seq - b.seq)
    }
    const damaged = found.filter(b => this.damaged.has(`b|${coordinator}|${epoch}|${b.seq}`))
    return damaged.length === 0 ? { batches: found, damaged: [] } : { batches: found.filter(b => !damaged.includes(b)), damaged: damaged.map(b => b.seq) }
  }

  async outcome (ts: Timestamp): Promise<Outcome | undefined> {
    return this.outcomes.get(ts)
  }

  async getMeta (name: string): Promise<Value | undefined> {
    return this.getMetaSync(name)
  }

  getMetaSync (name: string): Value | undefined {
    this.damaged.check(`m|${name}`)
    return cloneValue(this.meta.get(name))
  }

  async entries (below: Timestamp): Promise<Array<[string, Value]>> {
    return this.entriesSync(below)
  }

  entriesSync (below: Timestamp): Array<[string, Value]> {
    const out: Array<[string, Value]> = []
    for (const key of this.versions.sortedKeys()) {
      const list = this.versions.get(key) as Version[]
      const v = list[lastBelow(list, below)]
      if (v !== undefined && v.value !== undefined) { this.damaged.check(`v|${key}`); out.push([key, cloneValue(v.value)]) }
    }
    return out
  }

  async range (range: KeyRange, below: Timestamp, options?: RangeOptions): Promise<Array<[string, Value]>> {
    return this.rangeSync(range, below, options)
  }

  rangeSync (range: KeyRange, below: Timestamp, options?: RangeOptions): Array<[string, Value]> {
    const limit = rangeLimit(options)
    // Below the floor a key GC removed whole (a deletion) may have been live: no answer would be exact.
    if (below < this.floor) throw new SnapshotTooOldError(`a range read below ${below} needs history this store no longer holds (below ${this.floor})`)
    const keys = this.versions.sortedKeys()
    const [from, to] = sortedSlice(keys, range)
    const out: Array<[string, Value]> = []
    for (let i = 0; i < to - from && out.length < limit; i++) {
      const key = keys[options?.reverse === true ? to - 1 - i : from + i] as string
      const list = this.versions.get(key) as Version[]
      const v = list[lastBelow(list, below)]
      if (v?.value !== undefined) { this.damaged.check(`v|${key}`); out.push([key, cloneValue(v.value)]) }
    }
    return out
  }

  async gc (horizon: Timestamp, options: { readonly records?: Timestamp, readonly limit?: number } = {}): Promise<GcResult> {
    return this.gcSync(horizon, options.records, options.limit)
  }

  gcSync (horizon: Timestamp, records: Timestamp | undefined, limit = Infinity): GcResult {
    if (this.closed) throw new StoreFailedError('store closed')
    const from = { ...this.gcPass }
    const result = this.collect(horizon, records, limit, this.gcPass)
    // The journal replays the step from where it began, so a recovered store holds what this one does.
    this.record({ kind: 'gc', horizon, records, limit, from }, 'strict')
    return result
  }

  private collect (horizon: Timestamp, records: Timestamp | undefined, limit: number, pass: { latest?: string | undefined, txns?: string | undefined }): GcResult {
    let versionsRemoved = 0
    let batchesRemoved = 0
    let outcomesRemoved = 0
    let recordsRemoved = 0
    let more = false
    if (horizon > this.floor) this.floor = horizon
    const keys = keysAfter(this.versions.keys(), pass.latest, limit)
    pass.latest = keys.next
    more ||= keys.next !== undefined
    for (const key of keys.take) {
      const list = this.versions.get(key) as Version[]
      const i = lastBelow(list, horizon)
      if (i < 0) continue
      // Keep the newest version below the horizon, unless it is a deletion: then nothing below is needed.
      const keepFrom = (list[i] as Version).value === undefined ? i + 1 : i
      if (keepFrom === 0) continue
      versionsRemoved += keepFrom
      list.splice(0, keepFrom)
      // A record collected takes its damage with it.
      if (list.length === 0) { this.versions.delete(key); this.damaged.repaired(`v|${key}`) }
    }
    for (const epochs of this.bySeq.values()) {
      for (const seqs of epochs.values()) {
        for (const [seq, b] of seqs) {
          if ((b.thunks[b.thunks.length - 1] as Thunk).ts >= horizon) continue
          if (batchesRemoved >= limit) { more = true; break }
          seqs.delete(seq)
          this.damaged.repaired(`b|${b.coordinator}|${b.epoch}|${seq}`)
          batchesRemoved++
        }
      }
    }
    const old = [...this.outcomes.keys()].filter(ts => ts < horizon).sort()
    if (old.length > limit) more = true
    for (const ts of old.slice(0, limit)) {
      this.outcomes.delete(ts)
      outcomesRemoved++
    }
    if (records !== undefined) {
      const ids = keysAfter(this.txns.keys(), pass.txns, limit)
      pass.txns = ids.next
      more ||= ids.next !== undefined
      for (const id of ids.take) {
        if ((this.txns.get(id) as string).slice(0, 36) < records) { this.txns.delete(id); this.damaged.repaired(`x|${id}`); recordsRemoved++ }
      }
    }
    return { versionsRemoved, batchesRemoved, outcomesRemoved, recordsRemoved, more }
  }

  async exportSnapshot (at: Timestamp): Promise<StoreSnapshot> {
    return this.exportSnapshotSync(at)
  }

  exportSnapshotSync (at: Timestamp): StoreSnapshot {
    return {
      at,
      entries: this.entriesSync(at),
      txns: [...this.txns].filter(([id, r]) => { this.damaged.check(`x|${id}`); return r.slice(0, 36) < at }),
      meta: [...this.meta].map(([k, v]) => [k, cloneValue(v)] as const)
    }
  }

  async importSnapshot (snapshot: StoreSnapshot): Promise<void> {
    this.importSnapshotSync(snapshot)
  }

  importSnapshotSync (snapshot: StoreSnapshot): void {
    if (this.closed) throw new StoreFailedError('store closed')
    // Refused before anything changes: a bad value must not leave the store half replaced.
    for (const [, value] of snapshot.entries) checkValue(value, Infinity)
    for (const [, value] of snapshot.meta) checkValue(value, Infinity)
    this.load(snapshot)
    this.record({ kind: 'import', snapshot }, 'strict')
  }

  /**
   * Values, exactly-once records and outcomes become the snapshot's; batches
   * and the meta records it does not name stay (the replica's configuration,
   * promises and lease, and the batches it still has to evaluate).
   */
  private load (snapshot: StoreSnapshot): void {
    this.gcPass = {}
    this.damaged.replacedState()
    this.versions.clear()
    this.outcomes.clear()
    this.txns.clear()
    // The snapshot's values become the initial versions, as of just below `at`: every read at or above
    // `at` sees them, an older one is refused (the history before them is not here).
    const ts = timestampPredecessor(snapshot.at)
    if (snapshot.at > this.floor) this.floor = snapshot.at
    for (const [key, value] of snapshot.entries) this.versions.set(key, [{ ts, value: cloneValue(value) }])
    for (const [id, record] of snapshot.txns) this.txns.set(id, record)
    for (const [name, value] of snapshot.meta) this.meta.set(name, cloneValue(value))
  }

  async close (): Promise<void> {
    this.closed = true
  }

  /** Counts, for tests of growth and GC. */
  stats (): { keys: number, versions: number, batches: number, outcomes: number } {
    let versions = 0
    for (const list of this.versions.values()) versions += list.length
    let batches = 0
    for (const epochs of this.bySeq.values()) for (const seqs of epochs.values()) batches += seqs.size
    return { keys: this.versions.size, versions, batches, outcomes: this.outcomes.size }
  }

  /** Simulates a crash: this instance stops answering, and the returned store holds exactly what was durable (and damaged). Needs `journal`. */
  crashAndRecover (init: Omit<MemoryStoreInit, 'journal'> = {}): MemoryStore {
    if (this.disk === undefined) throw new Error('crashAndRecover needs a journal')
    this.crashed = true
    const next = new MemoryStore({ ...init, journal: true })
    this.damaged.copyTo(next.damaged)
    for (const entry of this.disk.durable) {
      next.replay(entry)
      ;(next.disk as Disk).durable.push(entry)
    }
    return next
  }
}
