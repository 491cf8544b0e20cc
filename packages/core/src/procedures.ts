import { DEFAULT_MAX_VALUE_BYTES } from './constants.js'
import { NondeterminismError, ProcedureError, ProcedureHashMismatchError, TidelineError, UndeclaredKeyError, UnknownProcedureError } from './errors.js'
import { sourceFingerprint } from './fingerprint.js'
import { hash64 } from './hash.js'
import { timestampMs, type Timestamp } from './timestamp.js'
import { checkValue, cloneValue, type Value } from './value.js'
import { inRange, keyRangeOf, rangeLimit, type KeyQuery, type KeyRange, type RangeOptions } from './key-range.js'
import type { MemberRole, Outcome, Thunk } from './types.js'

/** The transaction handle a procedure's `run` receives. */
export interface Tx {
  /** The value of a declared read key as of just before this transaction. */
  get(key: string): Value | undefined
  /** Sets a declared write key. */
  put(key: string, value: Value): void
  /** Deletes a declared write key. */
  delete(key: string): void
  /**
   * The live keys of a range inside a declared read range (`ranges` in
   * `keys`) with their values as of just before this transaction (and its
   * own writes so far), in key order: every replica sees the same keys.
   */
  range(query: KeyQuery, options?: RangeOptions): Array<[string, Value]>
  /** Ends the transaction with no effect; every replica decides the same. */
  abort(reason: string): never
  /** The transaction's timestamp in milliseconds: the only clock a procedure may read. */
  now(): number
  /** A deterministic random number in [0, 1) seeded by the transaction's timestamp. */
  random(): number
  /**
   * Who made the call, checked by every replica (its signature, in a group
   * with `signedCalls`); undefined in a group without.
   */
  readonly caller: Caller | undefined
}

/** A verified caller: its peer id, and in a group made from a signed genesis the role and name its invite gives it (claims.ts). */
export interface Caller {
  readonly id: string
  readonly role?: MemberRole
  readonly name?: string
}

export interface KeySets {
  readonly reads: readonly string[]
  readonly writes: readonly string[]
  /**
   * Key ranges read whole (`{ prefix }` or `{ start, end }`): `tx.range` may
   * read inside them and `tx.get` any key in them. Part of the read set, so
   * the keys a range holds are decided by timestamp order like any read.
   */
  readonly ranges?: readonly KeyQuery[]
}

export interface Procedure<A = Value, R = Value | null | undefined | void> {
  /** Declared read and write keys, a pure function of the arguments. */
  keys(args: A): KeySets
  /** The deterministic body. */
  run(tx: Tx, args: A): R
  /**
   * Names this version of the code instead of its source fingerprint (for
   * builds that mangle names). Change it whenever `keys` or `run` change.
   */
  readonly version?: string | number
  /**
   * The fingerprint of `keys` and `run` as their source was written
   * (`procedureFingerprint`), put here by a build plugin (`@tideline/db/vite`)
   * before a minifier renames what the functions' text would show. Used
   * instead of fingerprinting the functions at run time.
   */
  readonly fingerprint?: string
}

export type ProcedureMap = Record<string, Procedure<any, any>>

export interface RegisteredProcedure {
  readonly name: string
  readonly procedure: Procedure<any, any>
  /** Content hash of the procedure's code. */
  readonly hash: string
}

export interface ProcedureRegistry {
  readonly procedures: ReadonlyMap<string, RegisteredProcedure>
  /** Hash over every procedure's name and hash: what a group pins. */
  readonly hash: string
}

export interface RegistryInit {
  /**
   * Extra text folded into every procedure's hash, e.g. an app version.
   * @default ''
   */
  readonly salt?: string
}

/** What a procedure's hash covers when it names no `version`: the fingerprints of the source of its `keys` and of its `run`. */
export function procedureFingerprint (keysSource: string, runSource: string): string {
  return `${sourceFingerprint(keysSource)}\n${sourceFingerprint(runSource)}`
}

/** Builds a registry; each procedure's hash covers the fingerprint of `keys` and `run` (or its `version`). */
export function createRegistry (procedures: ProcedureMap, init: RegistryInit = {}): ProcedureRegistry {
  const salt = init.salt ?? ''
  const map = new Map<string, RegisteredProcedure>()
  for (const name of Object.keys(procedures).sort()) {
    const procedure = procedures[name] as Procedure<any, any>
    const { keys, run } = procedure as { keys: unknown, run: unknown }
    const { version, fingerprint } = procedure as { version?: unknown, fingerprint?: unknown }
    const code = typeof version === 'string' || typeof version === 'number'
      ? `version:${version}`
      : typeof fingerprint === 'string' ? fingerprint : procedureFingerprint(String(keys), String(run))
    const source = `${name}\n${code}\n${salt}`
    map.set(name, { name, procedure, hash: hash64(source, 1) + hash64(source, 2) })
  }
  const all = [...map.values()].map(p => `${p.name}=${p.hash}`).join(';')
  return { procedures: map, hash: hash64(all, 3) + hash64(all, 4) }
}

/** Looks a procedure up for submission: unknown names and mismatched hashes are refused. */
export function resolveProcedure (registry: ProcedureRegistry, name: string, hash: string): RegisteredProcedure {
  const found = registry.procedures.get(name)
  if (found === undefined) throw new UnknownProcedureError(`no procedure named ${JSON.stringify(name)}`)
  if (found.hash !== hash) throw new ProcedureHashMismatchError(`procedure ${JSON.stringify(name)} has hash ${hash}, the group runs ${found.hash}`)
  return found
}

/** Computes and checks a procedure's declared key sets. */
/** Key sets as checked: ranges in their KeyRange form. */
export interface DeclaredKeys {
  readonly reads: readonly string[]
  readonly writes: readonly string[]
  readonly ranges?: readonly KeyRange[]
}

export function declaredKeys (proc: RegisteredProcedure, args: Value): DeclaredKeys {
  let sets: KeySets
  try {
    sets = proc.procedure.keys(args)
  } catch (err) {
    throw new ProcedureError(`keys() of ${proc.name} threw: ${errorText(err)}`)
  }
  const ok = (xs: unknown): xs is string[] => Array.isArray(xs) && xs.every(k => typeof k === 'string')
  if (sets === null || typeof sets !== 'object' || !ok(sets.reads) || !ok(sets.writes) || (sets.ranges !== undefined && !Array.isArray(sets.ranges))) {
    throw new ProcedureError(`keys() of ${proc.name} must return { reads: string[], writes: string[], ranges?: Array<{ prefix } | { start, end? }> }`)
  }
  const out = { reads: [...new Set(sets.reads)], writes: [...new Set(sets.writes)] }
  if (sets.ranges === undefined || sets.ranges.length === 0) return out
  let ranges: KeyRange[]
  try {
    ranges = sets.ranges.map(keyRangeOf)
  } catch (err) {
    throw new ProcedureError(`keys() of ${proc.name} returned a bad range: ${errorText(err)}`)
  }
  return { ...out, ranges }
}

/** Whether `inner` lies inside `outer`. */
function within (inner: KeyRange, outer: KeyRange): boolean {
  return inner.start >= outer.start && (outer.end === undefined || (inner.end !== undefined && inner.end <= outer.end))
}

function errorText (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

/** Thrown by tx.abort; caught by evaluate. */
class TransactionAbort extends Error {
  readonly reason: string
  constructor (reason: string) {
    super(reason)
    this.name = 'TransactionAbort'
    this.reason = reason
  }
}

/** A deterministic generator seeded from the whole timestamp (xorshift128 on 32-bit lanes). */
function seededRandom (ts: Timestamp): () => number {
  const h1 = hash64(ts, 11)
  const h2 = hash64(ts, 12)
  let a = parseInt(h1.slice(0, 8), 16) | 1
  let b = parseInt(h1.slice(8), 16)
  let c = parseInt(h2.slice(0, 8), 16)
  let d = parseInt(h2.slice(8), 16)
  const next = (): number => {
    const t = a ^ (a << 11)
    a = b; b = c; c = d
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0
    return d / 4294967296
  }
  for (let i = 0; i < 8; i++) next()
  return next
}

/** A write a committed transaction makes; `value` undefined means delete. */
export type Write = readonly [key: string, value: Value | undefined]

export interface Evaluation {
  readonly outcome: Outcome
  readonly writes: readonly Write[]
}

export interface EvaluateOptions {
  /** @default DEFAULT_MAX_VALUE_BYTES */
  readonly maxValueBytes?: number
  /** The thunk's verified caller (`tx.caller`). */
  readonly caller?: Caller
  /** The keys live in a declared range just before the thunk (each with `read` its value), ascending; needed by a thunk that declares ranges. */
  readonly rangeKeys?: (range: KeyRange) => readonly string[]
}

/**
 * Evaluates one thunk against `read` (the snapshot just before its timestamp).
 * Everything that can go wrong is a deterministic abort with a named error:
 * the same thunk and snapshot give the same evaluation on every replica.
 */
export function evaluate (registry: ProcedureRegistry, thunk: Thunk, read: (key: string) => Value | undefined, options: EvaluateOptions = {}): Evaluation {
  const found = registry.procedures.get(thunk.procedure)
  if (found === undefined) return aborted('UnknownProcedureError', `no procedure named ${JSON.stringify(thunk.procedure)}`)
  if (found.hash !== thunk.hash) return aborted('ProcedureHashMismatchError', `procedure ${thunk.procedure} hash differs from the group's`)
  const tx = new EvalTx(thunk, read, options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES, options.caller, options.rangeKeys)
  let value: unknown
  try {
    value = withoutAmbientNondeterminism(() => found.procedure.run(tx, thunk.args) as unknown)
    if (value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function') {
      return aborted('ProcedureError', `${thunk.procedure} returned a promise; procedures must be synchronous`)
    }
    if (value === undefined) value = null
    checkValue(value, tx.maxBytes)
  } catch (err) {
    if (err instanceof TransactionAbort) return aborted('TransactionAbort', err.reason)
    if (err instanceof TidelineError) return aborted(err.name, err.message)
    return aborted('ProcedureError', `${thunk.procedure} threw ${errorText(err)}`)
  }
  return { outcome: { status: 'committed', value: value as Value }, writes: [...tx.pending] }
}

type Thrower = () => never
const forbidden = (what: string): Thrower => () => { throw new NondeterminismError(`${what} is not available inside a procedure; use tx.now() / tx.random()`) }
const FORBID_NOW = forbidden('Date.now')
const FORBID_RANDOM = forbidden('Math.random')
const FORBID_PERF = forbidden('performance.now')

/**
 * Runs a procedure body with `Date.now`, `Math.random` and `performance.now`
 * replaced by throwers, so a procedure cannot read them by accident (it would
 * get a different answer on every replica). The body is synchronous, so
 * nothing else runs while they are swapped out; they are restored after.
 */
function withoutAmbientNondeterminism<T> (body: () => T): T {
  const date = Date as { now: () => number }
  const math = Math as { random: () => number }
  const perf = (globalThis as { performance?: { now: () => number } }).performance
  const now = date.now
  const random = math.random
  const perfNow = perf?.now
  const perfOwn = perf !== undefined && Object.hasOwn(perf, 'now')
  date.now = FORBID_NOW
  math.random = FORBID_RANDOM
  if (perf !== undefined) perf.now = FORBID_PERF
  try {
    return body()
  } finally {
    date.now = now
    math.random = random
    if (perf !== undefined) {
      if (perfOwn && perfNow !== undefined) perf.now = perfNow
      else delete (perf as { now?: () => number }).now
    }
  }
}

/** The Tx a procedure runs against; writes stay pending until the run returns. */
class EvalTx implements Tx {
  readonly pending = new Map<string, Value | undefined>()
  private readonly thunk: Thunk
  private readonly source: (key: string) => Value | undefined
  readonly maxBytes: number
  private rng: (() => number) | undefined
  readonly caller: Caller | undefined

  private readonly rangeKeys: ((range: KeyRange) => readonly string[]) | undefined

  constructor (thunk: Thunk, source: (key: string) => Value | undefined, maxBytes: number, caller: Caller | undefined, rangeKeys?: (range: KeyRange) => readonly string[]) {
    this.thunk = thunk
    this.source = source
    this.maxBytes = maxBytes
    this.caller = caller === undefined ? undefined : Object.freeze({ ...caller })
    this.rangeKeys = rangeKeys
  }

  get (key: string): Value | undefined {
    if (this.pending.has(key)) return cloneValue(this.pending.get(key))
    if (!this.thunk.reads.includes(key) && !(this.thunk.ranges ?? []).some(r => inRange(key, r))) throw new UndeclaredKeyError(`${this.thunk.procedure} read undeclared key ${JSON.stringify(key)}`)
    return cloneValue(this.source(key))
  }

  range (query: KeyQuery, options?: RangeOptions): Array<[string, Value]> {
    const range = keyRangeOf(query)
    const limit = rangeLimit(options)
    const declared = (this.thunk.ranges ?? []).find(r => within(range, r))
    if (declared === undefined) throw new UndeclaredKeyError(`${this.thunk.procedure} read range ${JSON.stringify(range)} outside its declared ranges`)
    if (this.rangeKeys === undefined) throw new ProcedureError(`${this.thunk.procedure} read a range where no range reads are served`)
    // The keys live before the thunk, and the ones it wrote itself (a deletion hides one).
    const keys = new Set(this.rangeKeys(declared).filter(k => inRange(k, range)))
    for (const k of this.pending.keys()) if (inRange(k, range)) keys.add(k)
    const sorted = [...keys].sort()
    if (options?.reverse === true) sorted.reverse()
    const out: Array<[string, Value]> = []
    for (const key of sorted) {
      if (out.length >= limit) break
      const v = this.pending.has(key) ? this.pending.get(key) : this.source(key)
      if (v !== undefined) out.push([key, cloneValue(v)])
    }
    return out
  }

  put (key: string, value: Value): void {
    if (!this.thunk.writes.includes(key)) throw new UndeclaredKeyError(`${this.thunk.procedure} wrote undeclared key ${JSON.stringify(key)}`)
    checkValue(value, this.maxBytes)
    this.pending.set(key, cloneValue(value))
  }

  delete (key: string): void {
    if (!this.thunk.writes.includes(key)) throw new UndeclaredKeyError(`${this.thunk.procedure} deleted undeclared key ${JSON.stringify(key)}`)
    this.pending.set(key, undefined)
  }

  abort (reason: string): never {
    throw new TransactionAbort(String(reason))
  }

  now (): number {
    return timestampMs(this.thunk.ts)
  }

  random (): number {
    this.rng ??= seededRandom(this.thunk.ts)
    return this.rng()
  }
}

function aborted (error: string, reason: string): Evaluation {
  return { outcome: { status: 'aborted', reason, error }, writes: [] }
}
