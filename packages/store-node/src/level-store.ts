import { ClassicLevel } from 'classic-level'
import { StoreFailedError, StoreFormatError, TS_ZERO, VersionWindow, checkBatch, importByStaging, rangeLimit, stagedDigest, timestampPredecessor, timestampSuccessor } from '@tideline/core'
import type { Batch, BatchRange, GcResult, HeldVersion, KeyRange, Outcome, RangeOptions, SnapshotItems, SnapshotReader, StagedDigest, Store, StoreBatch, StoreSnapshot, Timestamp, Value, Version } from '@tideline/core'
import { TOMBSTONE, decode, encode } from './codec.js'
import { seal, unseal, unsealed } from './checked.js'
import { RecordFilter } from './record-filter.js'
import { LevelSnapshotReader } from './snapshot-reader.js'
import {
  FORMAT, FORMAT_KEY, GENERATIONS, GENERATION_KEY, MAX_NUM, SYNC_KEY, TAG_BATCH, TAG_META, TAG_RUN, TS_LENGTH,
  type Generation, batchKey, batchPrefix, nameKey, nameOfNameKey, runKey, seqOfBatchKey, tagRange, tsOfRunKey, withSeq, type Tag
} from './keys.js'

export interface LevelStoreInit {
  /** Directory of the LevelDB database; created when missing. */
  readonly path: string
  /**
   * How long (by the timestamps of the writes that replaced them) the
   * versions before each key's newest stay in memory for reads below it; a
   * read that needs an older one fails with SnapshotTooOldError.
   * @default 10000
   */
  readonly versionWindowMs?: number
}

/** A version as held in memory: its encoded value (empty: a deletion), decoded only when read. */
type Held = HeldVersion<Buffer>

/** Most run records `outcome` steps over looking for a timestamp's (late runs interleave). */
const MAX_RUN_SCAN = 64

type Db = ClassicLevel<Buffer, Buffer>
type Op = { type: 'put', key: Buffer, value: Buffer } | { type: 'del', key: Buffer }

/** The newest-version index entry: the version's timestamp, then its encoded value (nothing for a deletion). */
function latestEntry (ts: Timestamp, encoded: Buffer): Buffer {
  return Buffer.concat([Buffer.from(ts, 'latin1'), encoded])
}

function heldOf (b: Buffer): Held {
  return { ts: b.toString('latin1', 0, TS_LENGTH) as Timestamp, value: b.subarray(TS_LENGTH) }
}

function versionOf (h: Held): Version {
  return { ts: h.ts, value: h.value.length === 0 ? undefined : decode(h.value) }
}

/** A run record: its first thunk's timestamp, then its [ts, outcome] pairs. */
function runEntry (outcomes: ReadonlyArray<readonly [Timestamp, Outcome]>): Buffer {
  return Buffer.concat([Buffer.from((outcomes[0] as readonly [Timestamp, Outcome])[0], 'latin1'), encode(outcomes)])
}

function readRunEntry (b: Buffer): { first: Timestamp, outcomes: Array<[Timestamp, Outcome]> } {
  return { first: b.toString('latin1', 0, TS_LENGTH) as Timestamp, outcomes: decode<Array<[Timestamp, Outcome]>>(b.subarray(TS_LENGTH)) }
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

const SEALING = 'sealing:'

/**
 * Seals every entry of a format 3 or 4 database with its check, in key
 * order, a thousand at a time; each write also records the last key sealed
 * (format `sealing:<hex key>`), so an open after a crash part way resumes
 * after it instead of sealing an entry twice.
 */
async function addChecks (db: Db, from: Buffer | undefined): Promise<void> {
  let ops: Op[] = []
  let last: Buffer | undefined
  const flush = async (): Promise<void> => {
    if (last === undefined) return
    ops.push({ type: 'put', key: FORMAT_KEY, value: Buffer.from(SEALING + last.toString('hex'), 'latin1') })
    await db.batch(ops, { sync: true })
    ops = []
  }
  for await (const [k, v] of db.iterator(from === undefined ? {} : { gt: from })) {
    if (k.equals(FORMAT_KEY)) continue
    ops.push({ type: 'put', key: k, value: seal(k, v) })
    last = k
    if (ops.length >= 1_000) await flush()
  }
  await flush()
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
  } else if (['3', '4'].includes(b.toString('latin1')) || b.toString('latin1').startsWith(SEALING)) {
    // Format 3 is format 4 in generation 0 (no generation record); format 5 is format 4 with checks.
    const text = b.toString('latin1')
    await addChecks(db, text.startsWith(SEALING) ? Buffer.from(text.slice(SEALING.length), 'hex') : undefined)
    await db.put(FORMAT_KEY, Buffer.from(String(FORMAT), 'latin1'), { sync: true })
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
 * Only each key's newest version is on disk (`l!`: its timestamp and
 * value), written once per key per settlement batch; reading the newest
 * values below the frontier, what evaluation does, is one getMany. When a
 * settlement replaces a key's newest version, the replaced one stays in
 * memory (VersionWindow) for `versionWindowMs`, for reads below the newest
 * (strict reads whose timestamp later runs passed). A read that needs a
 * version no longer held (older than the window, or settled before the store
 * was opened) fails with SnapshotTooOldError.
 *
 * Each settlement batch's outcomes are one record (`r!`, keyed by its last
 * timestamp). The write-once check of settlements is answered from memory in
 * the common case: the store keeps the newest timestamp it settled, and a
 * settlement above it is the first of its timestamp. Only the others (late or
 * repeated settlements) look their timestamp up among the run records.
 *
 * A Bloom filter over the exactly-once records' ids (filled from the store on
 * open, then on every write, and rebuilt from the records left when GC or a
 * snapshot import removes some) answers `txnRecords` for new ids, nearly all
 * of them, without a read: that was one getMany per evaluated run.
 *
 * The database carries its store format (FORMAT_KEY); opening one written in
 * another format fails with StoreFormatError instead of misreading it.
 */
export class LevelStore implements Store {
  private readonly db: Db
  /** Replaced by a fresh filter when GC or a snapshot import removes records (a Bloom filter cannot forget). */
  private records: RecordFilter
  /** No outcome is recorded above this timestamp (as of the last committed batch). */
  private topOutcome: Timestamp = TS_ZERO
  private readonly window: VersionWindow<Buffer>
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false
  /** The tags the state's values and records live under (the generation record), and a snapshot being staged under the other's. */
  private gen: Generation = GENERATIONS[0]
  private staged: { readonly at: Timestamp, readonly records: RecordFilter } | undefined
  /** A commit left the other generation's keys behind: the next GC step clears them. */
  private oldGeneration = false
  /**
   * Where the GC pass under way stands, kind by kind (a step scans at most
   * `limit` entries of each, then stops there), and the ids of the records
   * it kept so far (plus those written since), the filter that replaces
   * `records` when the pass over them ends.
   */
  private gcPass: { latest?: Buffer | undefined, batches?: Buffer | undefined, records?: RecordFilter | undefined, recordsFrom?: Buffer | undefined, recordsRemoved?: number } = {}

  private constructor (db: Db, records: RecordFilter, windowMs: number) {
    this.db = db
    this.records = records
    this.window = new VersionWindow(windowMs)
  }

  static async open (init: LevelStoreInit): Promise<LevelStore> {
    const db = new ClassicLevel<Buffer, Buffer>(init.path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
    await db.open()
    const store = new LevelStore(db, new RecordFilter(), init.versionWindowMs ?? 10_000)
    try {
      await checkFormat(db, init.path)
      const gen = await db.get(GENERATION_KEY)
      store.gen = GENERATIONS[gen !== undefined && unseal(GENERATION_KEY, gen).toString('latin1') === '1' ? 1 : 0]
      // A staging a crash interrupted, or the generation a commit left behind, is cleared.
      await store.clearOther()
      for await (const k of db.keys(tagRange(store.gen.txn))) store.records.add(nameOfNameKey(k))
      const [last] = await db.keys({ ...tagRange(TAG_RUN), reverse: true, limit: 1 }).all()
      store.topOutcome = last === undefined ? TS_ZERO : tsOfRunKey(last)
      // Versions replaced before this open are gone: reads at or below everything settled then may need them.
      store.window.reset(last === undefined ? TS_ZERO : timestampSuccessor(store.topOutcome))
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
      const { ops, topOutcome, replaced } = await this.plan(batch)
      const sync = (batch.durability ?? 'strict') === 'strict'
      // A strict batch must also make the relaxed ones before it durable, even when it changes nothing.
      if (ops.length === 0 && sync) ops.push({ type: 'del', key: SYNC_KEY })
      // Replaced versions are held before the batch lands: a read that sees its new newest values
      // finds the versions they replaced (one that sees the old ones never looks for them).
      for (const [key, version, by] of replaced) this.window.replaced(key, version, by)
      if (ops.length > 0) await this.commit(ops, sync)
      // Only once it landed: after a failed batch, memory must not claim an outcome the disk lacks.
      this.topOutcome = topOutcome
      if (replaced.length > 0) this.window.trim(topOutcome)
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
        if (op.type === 'put') chained.put(op.key, seal(op.key, op.value))
        else chained.del(op.key)
      }
    } catch (err) {
      await chained.close()
      throw err
    }
    await chained.write({ sync })
  }

  /**
   * The operations of one batch, with the same skip rules as MemoryStore, the
   * newest outcome's timestamp and the versions it replaces once it lands.
   */
  private async plan (batch: StoreBatch): Promise<{ ops: Op[], topOutcome: Timestamp, replaced: Array<[string, Held, Timestamp]> }> {
    const batches = batch.batches ?? []
    const settle = batch.settle ?? []
    const txns = batch.txns ?? []
    const probe: Buffer[] = []
    // Each write-once check is answered from memory (a boolean) or by a probe (its index in `probe`).
    const ask = (key: Buffer): number => probe.push(key) - 1
    const batchKeys = batches.map(b => batchKey(b.coordinator, b.epoch, b.seq))
    const batchHeld = batchKeys.map(ask)
    // A record the filter has never seen is not in the store: only the others need a probe.
    const recordHeld = txns.map(([id]) => this.records.has(id) && ask(nameKey(this.gen.txn, id)))
    // The newest version of every key written: it is replaced (into memory) or, for a late write, stays.
    const latestKeys = new Map<string, Buffer>()
    for (const s of settle) for (const [key] of s.writes) if (!latestKeys.has(key)) latestKeys.set(key, nameKey(this.gen.latest, key))
    for (const k of latestKeys.values()) probe.push(k)
    // getMany, not hasMany: classic-level answers hasMany with iterator seeks, which step over every
    // deletion after a missing key (GC leaves many), so it slows as the store grows.
    const got = probe.length === 0 ? [] : await this.db.getMany(probe)
    // A write-once record held but damaged counts as not held: this write replaces it (the repair).
    const held = (answer: boolean | number): boolean => {
      if (typeof answer === 'boolean') return answer
      const b = got[answer]
      return b !== undefined && unsealed(probe[answer] as Buffer, b) !== undefined
    }
    const newest = new Map<string, Held>()
    let j = probe.length - latestKeys.size
    for (const [key, k] of latestKeys) {
      const b = got[j++]
      // A damaged newest version cannot be replaced safely (the digest needs it): StoreCorruptionError.
      if (b !== undefined) newest.set(key, heldOf(unseal(k, b)))
    }
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
    const outcomes: Array<[Timestamp, Outcome]> = []
    const replaced: Array<[string, Held, Timestamp]> = []
    const changed = new Set<string>()
    let topOutcome = this.topOutcome
    for (const s of settle) {
      // The first settlement of a timestamp decides it: a later one changes neither outcome nor versions.
      if (settled.has(s.ts) || (s.ts <= this.topOutcome && await this.outcomeIn(s.ts) !== undefined)) continue
      settled.add(s.ts)
      if (s.ts > topOutcome) topOutcome = s.ts
      outcomes.push([s.ts, s.outcome])
      for (const [key, value] of s.writes) {
        const version: Held = { ts: s.ts, value: value === undefined ? TOMBSTONE : encode(value) }
        const before = newest.get(key)
        if (before !== undefined && before.ts >= s.ts) {
          // A late write (below the newest): history only, for reads below the newest.
          replaced.push([key, version, before.ts])
          continue
        }
        if (before !== undefined) replaced.push([key, before, s.ts])
        newest.set(key, version)
        changed.add(key)
      }
    }
    for (const key of changed) {
      const v = newest.get(key) as Held
      ops.push({ type: 'put', key: latestKeys.get(key) as Buffer, value: Buffer.concat([Buffer.from(v.ts, 'latin1'), v.value]) })
    }
    if (outcomes.length > 0) {
      outcomes.sort((x, y) => x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)
      ops.push({ type: 'put', key: runKey((outcomes[outcomes.length - 1] as [Timestamp, Outcome])[0]), value: runEntry(outcomes) })
    }
    for (const [name, value] of batch.meta ?? []) ops.push({ type: 'put', key: nameKey(TAG_META, name), value: encode(value) })
    const recorded = new Set<string>()
    for (let k = 0; k < txns.length; k++) {
      const [id, record] = txns[k] as readonly [string, string]
      if (held(recordHeld[k] as boolean | number) || recorded.has(id)) continue
      recorded.add(id)
      ops.push({ type: 'put', key: nameKey(this.gen.txn, id), value: encode(record) })
      // Before the batch lands: a read meanwhile may then look for the record, never miss it.
      this.records.add(id)
      this.gcPass.records?.add(id)
    }
    return { ops, topOutcome, replaced }
  }

  /** The version of `key` a read below `below` sees, from its newest on disk (`entry`) or the window. */
  private read (key: string, entry: Buffer | undefined, below: Timestamp): Version | undefined {
    const h = this.window.read(key, entry === undefined ? undefined : heldOf(entry), below)
    return h === undefined ? undefined : versionOf(h)
  }

  async latest (key: string, below: Timestamp): Promise<Version | undefined> {
    const k = nameKey(this.gen.latest, key)
    const b = await this.db.get(k)
    return this.read(key, b === undefined ? undefined : unseal(k, b), below)
  }

  async latestValues (keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>> {
    // The window only gains versions a landed batch replaced, so what it holds matches any later disk state.
    const gen = this.gen
    const at = keys.map(k => nameKey(gen.latest, k))
    const got = await this.db.getMany(at)
    return keys.map((key, i) => {
      const b = got[i]
      return this.read(key, b === undefined ? undefined : unseal(at[i] as Buffer, b), below)?.value
    })
  }

  async txnRecords (clientTxnIds: readonly string[]): Promise<Array<string | undefined>> {
    const out: Array<string | undefined> = clientTxnIds.map(() => undefined)
    const at: number[] = []
    for (let i = 0; i < clientTxnIds.length; i++) if (this.records.has(clientTxnIds[i] as string)) at.push(i)
    if (at.length === 0) return out
    const keys = at.map(i => nameKey(this.gen.txn, clientTxnIds[i] as string))
    const got = await this.db.getMany(keys)
    for (let j = 0; j < at.length; j++) {
      const v = got[j]
      if (v !== undefined) out[at[j] as number] = decode<string>(unseal(keys[j] as Buffer, v))
    }
    return out
  }

  async batchRange (coordinator: string, epoch: number, from: number, to: number): Promise<BatchRange> {
    const lo = Math.max(1, Math.ceil(from))
    const hi = Math.min(Math.floor(to), MAX_NUM)
    const batches: Batch[] = []
    const damaged: number[] = []
    if (!(lo <= hi)) return { batches, damaged }
    const prefix = batchPrefix(coordinator, epoch)
    for (const [k, v] of await this.db.iterator({ gte: withSeq(prefix, lo), lte: withSeq(prefix, hi) }).all()) {
      const b = unsealed(k, v)
      if (b === undefined) damaged.push(seqOfBatchKey(k))
      else batches.push(readBatchEntry(b))
    }
    return { batches, damaged }
  }

  async outcome (ts: Timestamp): Promise<Outcome | undefined> {
    return await this.outcomeIn(ts)
  }

  /** Looks `ts` up among the run records from the first one ending at or after it (a late run may sit inside another's span). */
  private async outcomeIn (ts: Timestamp): Promise<Outcome | undefined> {
    for await (const [k, v] of this.db.iterator({ gte: runKey(ts), lt: tagRange(TAG_RUN).lt, limit: MAX_RUN_SCAN })) {
      const run = readRunEntry(unseal(k, v))
      if (run.first > ts) continue
      const hit = run.outcomes.find(([t]) => t === ts)
      if (hit !== undefined) return hit[1]
    }
    return undefined
  }

  async getMeta (name: string): Promise<Value | undefined> {
    const k = nameKey(TAG_META, name)
    const v = await this.db.get(k)
    return v === undefined ? undefined : decode(unseal(k, v))
  }

  async entries (below: Timestamp): Promise<Array<[string, Value]>> {
    // One pass over the newest versions (and the window for keys written at or above `below`). Keys come out in string order.
    const out: Array<[string, Value]> = []
    for await (const [k, v] of this.db.iterator(tagRange(this.gen.latest))) {
      const key = nameOfNameKey(k)
      const version = this.read(key, unseal(k, v), below)
      if (version?.value !== undefined) out.push([key, version.value])
    }
    return out
  }

  async range (range: KeyRange, below: Timestamp, options?: RangeOptions): Promise<Array<[string, Value]>> {
    // One iterator over the newest versions in the range: the name encoding sorts as JS strings do.
    const limit = rangeLimit(options)
    const out: Array<[string, Value]> = []
    if (range.end !== undefined && range.end <= range.start) return out
    const tag = this.gen.latest
    const bounds = { gte: nameKey(tag, range.start), lt: range.end === undefined ? tagRange(tag).lt : nameKey(tag, range.end) }
    for await (const [k, v] of this.db.iterator({ ...bounds, reverse: options?.reverse === true })) {
      const key = nameOfNameKey(k)
      const version = this.read(key, unseal(k, v), below)
      if (version?.value !== undefined) out.push([key, version.value])
      if (out.length >= limit) break
    }
    return out
  }

  async gc (horizon: Timestamp, options: { readonly records?: Timestamp, readonly limit?: number } = {}): Promise<GcResult> {
    const limit = options.limit ?? Infinity
    return this.serial(async () => {
      // What the last snapshot commit left of the old state, once no read that began before it can be under way.
      if (this.oldGeneration && this.staged === undefined) {
        await this.clearOther()
        this.oldGeneration = false
      }
      const ops: Op[] = []
      const pass = this.gcPass
      let more = false
      // Up to `limit` entries of a kind from where the last step stopped; `next` is where the next one starts (undefined: from the top).
      const scan = async (tag: Tag, from: Buffer | undefined, each: (k: Buffer, v: Buffer) => void): Promise<Buffer | undefined> => {
        let n = 0
        let last: Buffer | undefined
        const range = tagRange(tag)
        for await (const [k, stored] of this.db.iterator({ ...(from === undefined ? { gte: range.gte } : { gt: from }), lt: range.lt, ...(limit === Infinity ? {} : { limit }) })) {
          // A damaged entry stays: what it belongs to is unknown, and the read that meets it heals or refetches it.
          const v = unsealed(k, stored)
          if (v !== undefined) each(k, v)
          last = k
          n++
        }
        if (n < limit) return undefined
        more = true
        return last
      }
      let versionsRemoved = 0
      let batchesRemoved = 0
      let outcomesRemoved = 0
      let recordsRemoved = 0
      // A deletion that is a key's newest version below the horizon: no reader at or above it needs the key.
      pass.latest = await scan(this.gen.latest, pass.latest, (k, v) => {
        if (v.length !== TS_LENGTH || heldOf(v).ts >= horizon) return
        ops.push({ type: 'del', key: k })
        versionsRemoved++
      })
      pass.batches = await scan(TAG_BATCH, pass.batches, (k, v) => {
        if (lastTsOfBatchEntry(v) >= horizon) return
        ops.push({ type: 'del', key: k })
        batchesRemoved++
      })
      // Run records below the horizon are a prefix of their range: the oldest `limit` of them.
      // topOutcome stays as it is: above the newest outcome left, it only costs lookups.
      let runs = 0
      for await (const [k, v] of this.db.iterator({ gte: tagRange(TAG_RUN).gte, lt: runKey(horizon), ...(limit === Infinity ? {} : { limit }) })) {
        // Below the horizon by its key, damaged or not.
        ops.push({ type: 'del', key: k })
        const run = unsealed(k, v)
        if (run !== undefined) outcomesRemoved += readRunEntry(run).outcomes.length
        runs++
      }
      if (runs >= limit) more = true
      const records = options.records
      let passEnded = false
      if (records !== undefined) {
        // The ids kept, for a filter that forgets the removed ones once the pass is over (their bits would only pile up).
        const kept = pass.records ?? new RecordFilter()
        pass.records = kept
        pass.recordsFrom = await scan(this.gen.txn, pass.recordsFrom, (k, v) => {
          if (decode<string>(v).slice(0, 36) < records) { ops.push({ type: 'del', key: k }); recordsRemoved++ } else kept.add(nameOfNameKey(k))
        })
        passEnded = pass.recordsFrom === undefined
        pass.recordsRemoved = (pass.recordsRemoved ?? 0) + recordsRemoved
      }
      await this.commit(ops.length > 0 ? ops : [{ type: 'del', key: SYNC_KEY }], true)
      // Only once it landed and the pass saw every record: until then the old filter, a superset, keeps reads looking on disk.
      if (passEnded) {
        // A pass that dropped no record leaves the filter as it is.
        if ((pass.recordsRemoved ?? 0) > 0) this.records = pass.records as RecordFilter
        pass.records = undefined
        pass.recordsRemoved = 0
      }
      versionsRemoved += this.window.forget(horizon)
      return { versionsRemoved, batchesRemoved, outcomesRemoved, recordsRemoved, more }
    })
  }

  async exportSnapshot (at: Timestamp): Promise<StoreSnapshot> {
    const snapshot = this.db.snapshot()
    const meta: Array<[string, Value]> = []
    const reader = this.readerOn(snapshot, at)
    try {
      for await (const [k, v] of this.db.iterator({ ...tagRange(TAG_META), snapshot })) meta.push([nameOfNameKey(k), decode(unseal(k, v))])
      const entries: Array<readonly [string, Value]> = []
      const txns: Array<readonly [string, string]> = []
      for (let part = await reader.read(Infinity); ; part = await reader.read(Infinity)) {
        entries.push(...part.entries)
        txns.push(...part.txns)
        if (part.done) return { at, entries, txns, meta }
      }
    } finally {
      await reader.close()
    }
  }

  /** A reader on a LevelDB snapshot taken now: writes after it are not seen (evaluation goes on while a voter streams it). */
  async openSnapshot (at: Timestamp): Promise<SnapshotReader> {
    return this.readerOn(this.db.snapshot(), at)
  }

  /** A reader on `snapshot`, answering keys whose newest version lies at or above `at` from the window as it stands now. */
  private readerOn (snapshot: ReturnType<Db['snapshot']>, at: Timestamp): LevelSnapshotReader {
    const window = this.window.viewBelow(at)
    return new LevelSnapshotReader(this.db, snapshot, at, this.gen, (key, entry) => {
      const h = window(key, heldOf(entry))
      return h === undefined ? undefined : versionOf(h).value
    })
  }

  async importSnapshot (snapshot: StoreSnapshot): Promise<void> {
    // Encoded first: a value that does not encode throws before anything is touched.
    for (const [, value] of snapshot.meta) encode(value)
    await importByStaging(this, snapshot)
  }

  /** The generation the state does not use: where a snapshot is staged. */
  private get other (): Generation {
    return GENERATIONS[1 - this.gen.n] as Generation
  }

  /** Clears the other generation's values and records (what a staging or the last generation left). */
  private async clearOther (): Promise<void> {
    await this.db.clear(tagRange(this.other.latest))
    await this.db.clear(tagRange(this.other.txn))
  }

  async beginStaged (at: Timestamp): Promise<void> {
    return this.serial(async () => {
      await this.clearOther()
      this.oldGeneration = false
      this.staged = { at, records: new RecordFilter() }
    })
  }

  /** Writes a part under the other generation's tags (not synced: the commit's synced batch makes it durable). */
  async stagePart (items: SnapshotItems): Promise<StagedDigest> {
    const staged = this.staging()
    // The snapshot's values stand as of just below `at`: reads at or above it see them, older ones are refused.
    const asOf = timestampPredecessor(staged.at)
    const ops: Op[] = []
    for (const [key, value] of items.entries) ops.push({ type: 'put', key: nameKey(this.other.latest, key), value: latestEntry(asOf, encode(value)) })
    for (const [id, record] of items.txns) ops.push({ type: 'put', key: nameKey(this.other.txn, id), value: encode(record) })
    const digest = stagedDigest(items)
    await this.serial(async () => {
      if (this.staged !== staged) throw new TypeError('the staging was dropped or committed meanwhile')
      await this.commit(ops.length > 0 ? ops : [{ type: 'del', key: SYNC_KEY }], false)
      for (const [id] of items.txns) staged.records.add(id)
    })
    return digest
  }

  /**
   * The staged snapshot becomes the state in one synced batch: the
   * generation record switches over, run records are replaced by an empty
   * one just below `at`, and `meta` is written; batches and other meta stay.
   * The old generation's values and records are cleared at the next GC step.
   */
  async commitStaged (meta: ReadonlyArray<readonly [string, Value]>): Promise<void> {
    const staged = this.staging()
    const puts: Op[] = meta.map(([name, value]) => ({ type: 'put', key: nameKey(TAG_META, name), value: encode(value) }))
    return this.serial(async () => {
      const asOf = timestampPredecessor(staged.at)
      const next = this.other
      const ops: Op[] = []
      for await (const k of this.db.keys(tagRange(TAG_RUN))) ops.push({ type: 'del', key: k })
      // An empty run record just below `at`: a reopen then knows nothing below `at` is held (see open).
      ops.push({ type: 'put', key: runKey(asOf), value: Buffer.concat([Buffer.from(asOf, 'latin1'), encode([])]) })
      ops.push(...puts)
      ops.push({ type: 'put', key: GENERATION_KEY, value: Buffer.from(String(next.n), 'latin1') })
      // Before the batch lands, the filter claims the snapshot's ids as well (a read meanwhile looks on disk)...
      this.records.merge(staged.records)
      await this.commit(ops, true)
      // ...and once it landed, exactly them.
      this.gen = next
      this.records = staged.records
      this.staged = undefined
      this.oldGeneration = true
      this.gcPass = {}
      this.topOutcome = asOf
      this.window.reset(staged.at)
    })
  }

  async dropStaged (): Promise<void> {
    if (this.staged === undefined) return
    this.staged = undefined
    await this.serial(async () => { await this.clearOther() })
  }

  private staging (): { readonly at: Timestamp, readonly records: RecordFilter } {
    if (this.staged === undefined) throw new TypeError('no snapshot is being staged (beginStaged first)')
    return this.staged
  }

  /** How many records of each kind the store holds (a scan of every key: for benchmarks and operators, not hot paths). */
  async stats (): Promise<{ values: number, batches: number, runs: number, records: number, meta: number }> {
    const count = async (tag: Tag): Promise<number> => {
      let n = 0
      for await (const _ of this.db.keys(tagRange(tag))) n++
      return n
    }
    return { values: await count(this.gen.latest), batches: await count(TAG_BATCH), runs: await count(TAG_RUN), records: await count(this.gen.txn), meta: await count(TAG_META) }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.queue
    await this.db.close()
  }
}
