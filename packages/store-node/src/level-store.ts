import { ClassicLevel } from 'classic-level'
import { StoreFailedError, StoreFormatError, TS_ZERO, checkBatch } from '@tideline/core'
import type { Batch, GcResult, Outcome, Settlement, Store, StoreBatch, StoreSnapshot, Timestamp, Value, Version } from '@tideline/core'
import { TOMBSTONE, decode, encode } from './codec.js'
import { RecordFilter } from './record-filter.js'
import {
  FORMAT, FORMAT_KEY, MAX_NUM, SYNC_KEY, TAG_BATCH, TAG_LATEST, TAG_LENGTH, TAG_META, TAG_OUTCOME, TAG_TXN, TAG_VERSION, TS_LENGTH,
  batchKey, batchPrefix, decodeName, latestKeyOf, nameKey, nameOfNameKey, outcomeKey, splitVersionKey, tagRange, tsOfOutcomeKey,
  versionKey, versionPrefix, withSeq, withTs
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
 * A batch record: its last thunk's timestamp, then the encoded batch. GC
 * decides on the timestamp alone, without decoding every batch it passes.
 */
function batchEntry (b: Batch): Buffer {
  // A batch without thunks breaks the contract; it holds nothing, so the next GC may drop it.
  const last = b.thunks[b.thunks.length - 1]?.ts ?? TS_ZERO
  return Buffer.concat([Buffer.from(last, 'latin1'), encode(b)])
}

function readBatchEntry (b: Buffer): Batch {
  return decode<Batch>(b.subarray(TS_LENGTH))
}

function lastTsOfBatchEntry (b: Buffer): Timestamp {
  return b.toString('latin1', 0, TS_LENGTH) as Timestamp
}

/**
 * Marks an empty database with this store format, and refuses one that holds
 * data in another: reading an older layout as this one would lose data silently.
 */
async function checkFormat (db: Db, path: string): Promise<void> {
  const b = await db.get(FORMAT_KEY)
  if (b === undefined) {
    const [any] = await db.keys({ limit: 1 }).all()
    if (any === undefined) {
      await db.put(FORMAT_KEY, Buffer.from(String(FORMAT), 'latin1'), { sync: true })
      return
    }
  } else if (b.toString('latin1') === String(FORMAT)) {
    return
  }
  const found = b === undefined ? 'an older store format' : `store format ${b.toString('latin1')}`
  throw new StoreFormatError(
    `${path} was written by another Tideline version (${found}; this version reads store format ${FORMAT}): wipe the data directory or migrate it`
  )
}

/**
 * A durable Store on one LevelDB database (classic-level). Every write is one
 * LevelDB batch, so it lands whole or not at all; strict batches are synced to
 * disk before they resolve. Writes run one at a time, so the read-before-write
 * of write-once records and settlements sees every earlier write.
 *
 * Each replicated batch is one record (`b!`), keyed by coordinator, epoch and
 * seq so that a range of one coordinator's sequence is one iterator.
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
 * The write-once check of outcomes is answered from memory in the common
 * case: the store keeps the newest timestamp it recorded an outcome for, and
 * a settlement above it is the first of its timestamp. Only the others
 * (retransmitted or late settlements) are read, in the one getMany that also
 * probes the batch records and the newest-version index.
 *
 * The database carries its store format (FORMAT_KEY); opening one written in
 * another format fails with StoreFormatError instead of misreading it.
 */
export class LevelStore implements Store {
  private readonly db: Db
  private readonly records: RecordFilter
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
      await checkFormat(db, init.path)
      for await (const k of db.keys(tagRange(TAG_TXN))) store.records.add(nameOfNameKey(k))
      const [last] = await db.keys({ ...tagRange(TAG_OUTCOME), reverse: true, limit: 1 }).all()
      store.topOutcome = last === undefined ? TS_ZERO : tsOfOutcomeKey(last)
    } catch (err) {
      await db.close()
      throw err
    }
    return store
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
      const { ops, topOutcome } = await this.plan(batch)
      const sync = (batch.durability ?? 'strict') === 'strict'
      // A strict batch must also make the relaxed ones before it durable, even when it changes nothing.
      if (ops.length === 0 && sync) ops.push({ type: 'del', key: SYNC_KEY })
      if (ops.length > 0) await this.commit(ops, sync)
      // Only once it landed: after a failed batch, memory must not claim an outcome the disk lacks.
      this.topOutcome = topOutcome
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
   * the newest outcome's timestamp once it lands.
   */
  private async plan (batch: StoreBatch): Promise<{ ops: Op[], topOutcome: Timestamp }> {
    const batches = batch.batches ?? []
    const settle = batch.settle ?? []
    const txns = batch.txns ?? []
    const probe: Buffer[] = []
    // Each write-once check is answered from memory (a boolean) or by a probe (its index in `probe`).
    const ask = (key: Buffer): number => probe.push(key) - 1
    const batchKeys = batches.map(b => batchKey(b.coordinator, b.epoch, b.seq))
    const batchHeld = batchKeys.map(ask)
    const outcomeHeld = settle.map(s => s.ts > this.topOutcome ? false : ask(outcomeKey(s.ts)))
    // A record the filter has never seen is not in the store: only the others need a probe.
    const recordHeld = txns.map(([id]) => this.records.has(id) && ask(nameKey(TAG_TXN, id)))
    // The newest version of every key written, to keep its index entry the newest.
    const latestKeys = new Map<string, Buffer>()
    for (const s of settle) for (const [key] of s.writes) if (!latestKeys.has(key)) latestKeys.set(key, nameKey(TAG_LATEST, key))
    for (const k of latestKeys.values()) probe.push(k)
    // getMany, not hasMany: classic-level answers hasMany with iterator seeks, which step over every
    // deletion after a missing key (GC leaves many), so it slows as the store grows.
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
    const added = new Set<string>()
    for (let k = 0; k < batches.length; k++) {
      const key = batchKeys[k] as Buffer
      const id = key.toString('latin1')
      if (held(batchHeld[k] as number) || added.has(id)) continue
      added.add(id)
      ops.push({ type: 'put', key, value: batchEntry(batches[k] as Batch) })
    }
    const settled = new Set<Timestamp>()
    let topOutcome = this.topOutcome
    for (let k = 0; k < settle.length; k++) {
      const s = settle[k] as Settlement
      // The first settlement of a timestamp decides it: a later one changes neither outcome nor versions.
      if (held(outcomeHeld[k] as boolean | number) || settled.has(s.ts)) continue
      settled.add(s.ts)
      if (s.ts > topOutcome) topOutcome = s.ts
      ops.push({ type: 'put', key: outcomeKey(s.ts), value: encode(s.outcome) })
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
    return { ops, topOutcome }
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

  async batchRange (coordinator: string, epoch: number, from: number, to: number): Promise<Batch[]> {
    const lo = Math.max(1, Math.ceil(from))
    const hi = Math.min(Math.floor(to), MAX_NUM)
    if (!(lo <= hi)) return []
    const prefix = batchPrefix(coordinator, epoch)
    const got = await this.db.values({ gte: withSeq(prefix, lo), lte: withSeq(prefix, hi) }).all()
    return got.map(readBatchEntry)
  }

  async outcome (ts: Timestamp): Promise<Outcome | undefined> {
    const v = await this.db.get(outcomeKey(ts))
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
      let batchesRemoved = 0
      let outcomesRemoved = 0
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

      for await (const [k, v] of this.db.iterator(tagRange(TAG_BATCH))) {
        if (lastTsOfBatchEntry(v) >= horizon) continue
        ops.push({ type: 'del', key: k })
        batchesRemoved++
      }
      // topOutcome stays as it is: above the newest outcome left, it only costs probes.
      for await (const k of this.db.keys({ gte: tagRange(TAG_OUTCOME).gte, lt: outcomeKey(horizon) })) {
        ops.push({ type: 'del', key: k })
        outcomesRemoved++
      }

      const records = options.records
      if (records !== undefined) {
        for await (const [k, v] of this.db.iterator(tagRange(TAG_TXN))) {
          if (decode<string>(v).slice(0, 36) < records) { ops.push({ type: 'del', key: k }); recordsRemoved++ }
        }
      }
      await this.commit(ops.length > 0 ? ops : [{ type: 'del', key: SYNC_KEY }], true)
      return { versionsRemoved, batchesRemoved, outcomesRemoved, recordsRemoved }
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
      // Batches and outcomes go too (as MemoryStore's load); the format record stays.
      const ops: Op[] = []
      for await (const k of this.db.keys()) if (!k.equals(FORMAT_KEY)) ops.push({ type: 'del', key: k })
      ops.push(...puts)
      if (ops.length === 0) ops.push({ type: 'del', key: SYNC_KEY })
      await this.commit(ops, true)
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
