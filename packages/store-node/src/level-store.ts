import { ClassicLevel } from 'classic-level'
import { StoreFailedError, TS_ZERO, checkBatch } from '@tideline/core'
import type { GcResult, Outcome, Settlement, Store, StoreBatch, StoreSnapshot, Thunk, Timestamp, Value, Version } from '@tideline/core'
import { TOMBSTONE, decode, encode } from './codec.js'
import { RecordFilter } from './record-filter.js'
import {
  SYNC_KEY, TAG_LATEST, TAG_META, TAG_OUTCOME, TAG_THUNK, TAG_TXN, TAG_UNSETTLED, TAG_VERSION, TS_LENGTH,
  latestKeyOf, nameKey, nameOfNameKey, decodeName, seqKey, splitVersionKey, tagRange, tsKey, tsOfTsKey, versionKey, versionPrefix, withTs,
  TAG_LENGTH
} from './keys.js'

export interface LevelStoreInit {
  /** Directory of the LevelDB database; created when missing. */
  readonly path: string
}

type Db = ClassicLevel<Buffer, Buffer>
type Op = { type: 'put', key: Buffer, value: Buffer } | { type: 'del', key: Buffer }
type Snapshot = ReturnType<Db['snapshot']>

/** The newest-version index entry: the version's timestamp, then its encoded value (nothing for a deletion). */
function latestEntry (ts: Timestamp, encoded: Buffer): Buffer {
  return Buffer.concat([Buffer.from(ts, 'latin1'), encoded])
}

function readLatestEntry (b: Buffer): Version {
  return { ts: b.toString('latin1', 0, TS_LENGTH) as Timestamp, value: b.length === TS_LENGTH ? undefined : decode(b.subarray(TS_LENGTH)) }
}

/**
 * A durable Store on one LevelDB database (classic-level). Every write is one
 * LevelDB batch, so it lands whole or not at all; strict batches are synced to
 * disk before they resolve. Writes run one at a time, so the read-before-write
 * of write-once records and settlements sees every earlier write.
 *
 * Besides every version, each key has an index entry for its newest version
 * (`l!`), kept in the same batches: reading the newest values below the
 * frontier, what evaluation does, is one getMany instead of one iterator seek
 * per key (a profile of the relays showed the seeks as their top store cost).
 *
 * A Bloom filter over the exactly-once records' ids (filled from the store on
 * open, then on every write) answers `txnRecords` for new ids, nearly all of
 * them, without a read: that was one getMany per evaluated run.
 *
 * The write-once checks of thunks and outcomes are answered from memory in
 * the common case: the store keeps the timestamps of the thunks it holds
 * unsettled, and the newest timestamp it recorded an outcome for. Every held
 * thunk is unsettled or has an outcome, so a thunk that is not unsettled and
 * lies above every outcome is not held, and an unsettled one has no outcome.
 * Only the others (retransmissions of settled thunks, late thunks) are read.
 */
export class LevelStore implements Store {
  private readonly db: Db
  private readonly records: RecordFilter
  /** Timestamps of the thunks held without a settlement (the `u!` markers), as of the last committed batch. */
  private readonly open = new Set<Timestamp>()
  /** No outcome is recorded above this timestamp (as of the last committed batch). */
  private topOutcome: Timestamp = TS_ZERO
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false

  private constructor (db: Db, records: RecordFilter) {
    this.db = db
    this.records = records
  }

  static async open (init: LevelStoreInit): Promise<LevelStore> {
    const db = new ClassicLevel<Buffer, Buffer>(init.path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    const store = new LevelStore(db, new RecordFilter())
    try {
      for await (const k of db.keys(tagRange(TAG_TXN))) store.records.add(nameOfNameKey(k))
      await store.loadSettlementState()
    } catch (err) {
      await db.close()
      throw err
    }
    return store
  }

  /** Reads the unsettled thunks' timestamps and the newest outcome's from disk. */
  private async loadSettlementState (): Promise<void> {
    for await (const k of this.db.keys(tagRange(TAG_UNSETTLED))) this.open.add(tsOfTsKey(k))
    const [last] = await this.db.keys({ ...tagRange(TAG_OUTCOME), reverse: true, limit: 1 }).all()
    this.topOutcome = last === undefined ? TS_ZERO : tsOfTsKey(last)
  }

  /** Runs `fn` after every write queued before it. */
  private serial<T> (fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreFailedError('store closed'))
    const run = this.queue.then(fn)
    this.queue = run.catch(() => {})
    return run
  }

  async write (batch: StoreBatch): Promise<void> {
    checkBatch(batch)
    return this.serial(async () => {
      const { ops, opened, settled } = await this.plan(batch)
      const sync = (batch.durability ?? 'strict') === 'strict'
      // A strict batch must also make the relaxed ones before it durable, even when it changes nothing.
      if (ops.length === 0 && sync) ops.push({ type: 'del', key: SYNC_KEY })
      if (ops.length > 0) await this.commit(ops, sync)
      // Only what landed: after a failed batch, memory must not claim a thunk the disk lacks.
      for (const ts of opened) this.open.add(ts)
      for (const ts of settled) {
        this.open.delete(ts)
        if (ts > this.topOutcome) this.topOutcome = ts
      }
    })
  }

  /**
   * Writes `ops` as one LevelDB write batch. A chained batch hands each operation
   * straight to the native batch; the array form copies and re-validates every
   * operation in JS first, which costs more than the write for large batches.
   */
  private async commit (ops: readonly Op[], sync: boolean): Promise<void> {
    const chained = this.db.batch()
    try {
      for (const op of ops) {
        if (op.type === 'put') chained.put(op.key, op.value)
        else chained.del(op.key)
      }
    } catch (err) {
      await chained.close()
      throw err
    }
    await chained.write({ sync })
  }

  /**
   * The operations of one batch, with the same skip rules as MemoryStore, and
   * the thunks it leaves unsettled and settles (for the in-memory state, once it lands).
   */
  private async plan (batch: StoreBatch): Promise<{ ops: Op[], opened: Timestamp[], settled: Timestamp[] }> {
    const thunks = batch.thunks ?? []
    const settle = batch.settle ?? []
    const txns = batch.txns ?? []
    const probe: Buffer[] = []
    // Each write-once check is answered from memory (a boolean) or by a probe (its index in `probe`).
    const ask = (key: Buffer): number => probe.push(key) - 1
    const thunkHeld = thunks.map(t => this.open.has(t.ts) || (t.ts > this.topOutcome ? false : ask(tsKey(TAG_THUNK, t.ts))))
    const settleHeld = settle.map(s => this.open.has(s.ts)
      ? { thunk: true, outcome: false }
      : s.ts > this.topOutcome ? { thunk: false, outcome: false } : { thunk: ask(tsKey(TAG_THUNK, s.ts)), outcome: ask(tsKey(TAG_OUTCOME, s.ts)) })
    // A record the filter has never seen is not in the store: only the others need a probe.
    const recordHeld = txns.map(([id]) => this.records.has(id) && ask(nameKey(TAG_TXN, id)))
    // The newest version of every key written, to keep its index entry the newest.
    const latestKeys = new Map<string, Buffer>()
    for (const s of settle) for (const [key] of s.writes) if (!latestKeys.has(key)) latestKeys.set(key, nameKey(TAG_LATEST, key))
    for (const k of latestKeys.values()) probe.push(k)
    // getMany, not hasMany: classic-level answers hasMany with iterator seeks, which step over every
    // deletion after a missing key (the `u!` index is mostly deletions), so it slows as the store grows.
    const got = probe.length === 0 ? [] : await this.db.getMany(probe)
    const held = (answer: boolean | number): boolean => typeof answer === 'boolean' ? answer : got[answer] !== undefined
    const newest = new Map<string, Timestamp>()
    let j = probe.length - latestKeys.size
    for (const key of latestKeys.keys()) {
      const b = got[j++]
      if (b !== undefined) newest.set(key, b.toString('latin1', 0, TS_LENGTH) as Timestamp)
    }
    const latestOps = new Map<string, Op>()
    const ops: Op[] = []
    const added = new Set<Timestamp>()
    for (let k = 0; k < thunks.length; k++) {
      const t = thunks[k] as Thunk
      if (held(thunkHeld[k] as boolean | number) || added.has(t.ts)) continue
      added.add(t.ts)
      ops.push(
        { type: 'put', key: tsKey(TAG_THUNK, t.ts), value: encode(t) },
        { type: 'put', key: seqKey(t.coordinator, t.epoch, t.seq), value: Buffer.from(t.ts, 'latin1') },
        { type: 'put', key: tsKey(TAG_UNSETTLED, t.ts), value: TOMBSTONE }
      )
    }
    const settled = new Set<Timestamp>()
    for (let k = 0; k < settle.length; k++) {
      const s = settle[k] as Settlement
      const answer = settleHeld[k] as { thunk: boolean | number, outcome: boolean | number }
      const known = held(answer.thunk) || added.has(s.ts)
      if (held(answer.outcome) || settled.has(s.ts)) continue
      // A settlement of a thunk not held still writes its versions, but records no outcome (as MemoryStore).
      if (known) {
        settled.add(s.ts)
        ops.push({ type: 'put', key: tsKey(TAG_OUTCOME, s.ts), value: encode(s.outcome) }, { type: 'del', key: tsKey(TAG_UNSETTLED, s.ts) })
      }
      for (const [key, value] of s.writes) {
        const encoded = value === undefined ? TOMBSTONE : encode(value)
        ops.push({ type: 'put', key: versionKey(key, s.ts), value: encoded })
        const before = newest.get(key)
        if (before !== undefined && before >= s.ts) continue
        newest.set(key, s.ts)
        latestOps.set(key, { type: 'put', key: latestKeys.get(key) as Buffer, value: latestEntry(s.ts, encoded) })
      }
    }
    ops.push(...latestOps.values())
    for (const [name, value] of batch.meta ?? []) ops.push({ type: 'put', key: nameKey(TAG_META, name), value: encode(value) })
    const recorded = new Set<string>()
    for (let k = 0; k < txns.length; k++) {
      const [id, record] = txns[k] as readonly [string, string]
      if (held(recordHeld[k] as boolean | number) || recorded.has(id)) continue
      recorded.add(id)
      ops.push({ type: 'put', key: nameKey(TAG_TXN, id), value: encode(record) })
      // Before the batch lands: a read meanwhile may then look for the record, never miss it.
      this.records.add(id)
    }
    return { ops, opened: [...added].filter(ts => !settled.has(ts)), settled: [...settled] }
  }

  async latest (key: string, below: Timestamp): Promise<Version | undefined> {
    const b = await this.db.get(nameKey(TAG_LATEST, key))
    if (b === undefined) return undefined
    const v = readLatestEntry(b)
    if (v.ts < below) return v
    return this.latestIn(versionPrefix(key), below, undefined)
  }

  private async latestIn (prefix: Buffer, below: Timestamp, snapshot: Snapshot | undefined): Promise<Version | undefined> {
    const range = { gte: prefix, lt: withTs(prefix, below), reverse: true, limit: 1 }
    const [hit] = await this.db.iterator(snapshot === undefined ? range : { ...range, snapshot }).all()
    if (hit === undefined) return undefined
    const [k, v] = hit
    return { ts: splitVersionKey(k).ts, value: v.length === 0 ? undefined : decode(v) }
  }

  async latestValues (keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>> {
    // One snapshot, so a batch landing meanwhile is seen by all of the keys or none.
    const snapshot = keys.length > 1 ? this.db.snapshot() : undefined
    try {
      // The index answers every key whose newest version lies below `below` (or that has none);
      // only keys written at or above it need a seek among their versions.
      const got = await this.db.getMany(keys.map(k => nameKey(TAG_LATEST, k)), snapshot === undefined ? {} : { snapshot })
      return await Promise.all(keys.map(async (key, i) => {
        const b = got[i]
        if (b === undefined) return undefined
        const v = readLatestEntry(b)
        if (v.ts < below) return v.value
        return (await this.latestIn(versionPrefix(key), below, snapshot))?.value
      }))
    } finally {
      await snapshot?.close()
    }
  }

  async txnRecords (clientTxnIds: readonly string[]): Promise<Array<string | undefined>> {
    const out: Array<string | undefined> = clientTxnIds.map(() => undefined)
    const at: number[] = []
    for (let i = 0; i < clientTxnIds.length; i++) if (this.records.has(clientTxnIds[i] as string)) at.push(i)
    if (at.length === 0) return out
    const got = await this.db.getMany(at.map(i => nameKey(TAG_TXN, clientTxnIds[i] as string)))
    for (let j = 0; j < at.length; j++) {
      const v = got[j]
      if (v !== undefined) out[at[j] as number] = decode<string>(v)
    }
    return out
  }

  async thunkRange (coordinator: string, epoch: number, from: number, to: number): Promise<Thunk[]> {
    const lo = Math.max(1, from)
    const hi = Math.min(to, Number.MAX_SAFE_INTEGER)
    if (!(lo <= hi)) return []
    const snapshot = this.db.snapshot()
    try {
      const ts = await this.db.values({ gte: seqKey(coordinator, epoch, Math.ceil(lo)), lte: seqKey(coordinator, epoch, Math.floor(hi)), snapshot }).all()
      return await this.thunksAt(ts.map(b => tsKey(TAG_THUNK, b.toString('latin1') as Timestamp)), snapshot)
    } finally {
      await snapshot.close()
    }
  }

  private async thunksAt (keys: Buffer[], snapshot: Snapshot): Promise<Thunk[]> {
    if (keys.length === 0) return []
    const got = await this.db.getMany(keys, { snapshot })
    const out: Thunk[] = []
    for (const v of got) if (v !== undefined) out.push(decode<Thunk>(v))
    return out
  }

  async unsettled (): Promise<Thunk[]> {
    const snapshot = this.db.snapshot()
    try {
      const keys = await this.db.keys({ ...tagRange(TAG_UNSETTLED), snapshot }).all()
      return await this.thunksAt(keys.map(k => tsKey(TAG_THUNK, tsOfTsKey(k))), snapshot)
    } finally {
      await snapshot.close()
    }
  }

  async outcome (ts: Timestamp): Promise<Outcome | undefined> {
    const v = await this.db.get(tsKey(TAG_OUTCOME, ts))
    return v === undefined ? undefined : decode<Outcome>(v)
  }

  async getMeta (name: string): Promise<Value | undefined> {
    const v = await this.db.get(nameKey(TAG_META, name))
    return v === undefined ? undefined : decode(v)
  }

  async entries (below: Timestamp): Promise<Array<[string, Value]>> {
    return this.entriesIn(below, undefined)
  }

  /** One pass over every version: per key, the last one below `below` is its value. Keys come out in string order. */
  private async entriesIn (below: Timestamp, snapshot: Snapshot | undefined): Promise<Array<[string, Value]>> {
    const out: Array<[string, Value]> = []
    let prefix: Buffer | undefined
    let value: Buffer | undefined
    const flush = (): void => {
      if (prefix !== undefined && value !== undefined && value.length > 0) out.push([decodeName(prefix, TAG_LENGTH)[0], decode(value)])
      value = undefined
    }
    const range = tagRange(TAG_VERSION)
    for await (const [k, v] of this.db.iterator(snapshot === undefined ? range : { ...range, snapshot })) {
      const split = splitVersionKey(k)
      if (prefix === undefined || !split.prefix.equals(prefix)) {
        flush()
        prefix = split.prefix
      }
      if (split.ts < below) value = v
    }
    flush()
    return out
  }

  async gc (horizon: Timestamp, options: { readonly records?: Timestamp } = {}): Promise<GcResult> {
    return this.serial(async () => {
      const ops: Op[] = []
      let versionsRemoved = 0
      let thunksRemoved = 0
      let recordsRemoved = 0

      // Per key, versions below the horizon in order: all but the newest go, and the newest too if it is a deletion.
      let prefix: Buffer | undefined
      let old: Array<[Buffer, Buffer]> = []
      let above = false
      const flush = (): void => {
        const last = old[old.length - 1]
        if (last !== undefined) {
          const n = last[1].length === 0 ? old.length : old.length - 1
          for (let j = 0; j < n; j++) ops.push({ type: 'del', key: (old[j] as [Buffer, Buffer])[0] })
          versionsRemoved += n
          // A key left with no version at all loses its index entry too.
          if (n === old.length && !above && prefix !== undefined) ops.push({ type: 'del', key: latestKeyOf(prefix) })
        }
        old = []
        above = false
      }
      for await (const [k, v] of this.db.iterator(tagRange(TAG_VERSION))) {
        const split = splitVersionKey(k)
        if (prefix === undefined || !split.prefix.equals(prefix)) {
          flush()
          prefix = split.prefix
        }
        if (split.ts < horizon) old.push([k, v])
        else above = true
      }
      flush()

      // Every held thunk has either an unsettled marker or an outcome.
      const open = new Set<Timestamp>()
      for await (const k of this.db.keys({ gte: tagRange(TAG_UNSETTLED).gte, lt: tsKey(TAG_UNSETTLED, horizon) })) open.add(tsOfTsKey(k))
      for await (const [k, v] of this.db.iterator({ gte: tagRange(TAG_THUNK).gte, lt: tsKey(TAG_THUNK, horizon) })) {
        const ts = tsOfTsKey(k)
        if (open.has(ts)) continue
        const t = decode<Thunk>(v)
        ops.push({ type: 'del', key: k }, { type: 'del', key: tsKey(TAG_OUTCOME, ts) }, { type: 'del', key: seqKey(t.coordinator, t.epoch, t.seq) })
        thunksRemoved++
      }

      const records = options.records
      if (records !== undefined) {
        for await (const [k, v] of this.db.iterator(tagRange(TAG_TXN))) {
          if (decode<string>(v).slice(0, 36) < records) { ops.push({ type: 'del', key: k }); recordsRemoved++ }
        }
      }
      await this.commit(ops.length > 0 ? ops : [{ type: 'del', key: SYNC_KEY }], true)
      return { versionsRemoved, thunksRemoved, recordsRemoved }
    })
  }

  async exportSnapshot (at: Timestamp): Promise<StoreSnapshot> {
    const snapshot = this.db.snapshot()
    try {
      const entries = await this.entriesIn(at, snapshot)
      const txns: Array<[string, string]> = []
      for await (const [k, v] of this.db.iterator({ ...tagRange(TAG_TXN), snapshot })) {
        const record = decode<string>(v)
        if (record.slice(0, 36) < at) txns.push([nameOfNameKey(k), record])
      }
      const meta: Array<[string, Value]> = []
      for await (const [k, v] of this.db.iterator({ ...tagRange(TAG_META), snapshot })) meta.push([nameOfNameKey(k), decode(v)])
      return { at, entries, txns, meta }
    } finally {
      await snapshot.close()
    }
  }

  async importSnapshot (snapshot: StoreSnapshot): Promise<void> {
    // Encode first: a value that does not encode throws before anything is touched.
    const puts: Op[] = []
    for (const [key, value] of snapshot.entries) {
      const encoded = encode(value)
      puts.push({ type: 'put', key: versionKey(key, TS_ZERO), value: encoded }, { type: 'put', key: nameKey(TAG_LATEST, key), value: latestEntry(TS_ZERO, encoded) })
    }
    for (const [id, record] of snapshot.txns) {
      puts.push({ type: 'put', key: nameKey(TAG_TXN, id), value: encode(record) })
      this.records.add(id)
    }
    for (const [name, value] of snapshot.meta) puts.push({ type: 'put', key: nameKey(TAG_META, name), value: encode(value) })
    return this.serial(async () => {
      // Clearing and loading in one batch: a crash leaves the old contents or the snapshot, never a mix.
      const ops: Op[] = []
      for await (const k of this.db.keys()) ops.push({ type: 'del', key: k })
      ops.push(...puts)
      if (ops.length === 0) ops.push({ type: 'del', key: SYNC_KEY })
      await this.commit(ops, true)
      this.open.clear()
      this.topOutcome = TS_ZERO
    })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.queue
    await this.db.close()
  }
}
