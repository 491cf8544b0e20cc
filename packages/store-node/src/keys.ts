import type { Timestamp } from '@tideline/core'

/*
 * Key layout of the one LevelDB database (every key is bytes; `!` after the tag
 * only keeps dumps readable):
 *
 *   b!<name(coordinator)><epoch><seq> → <ts of its last thunk> + batch (epoch, seq: 14 hex digits)
 *   r!<ts>                            → <ts of its first thunk> + [ts, outcome][]: a settled run's outcomes, keyed by its last thunk
 *   x!<name(clientTxnId)>             → exactly-once record (utf-8)
 *   m!<name(meta name)>               → value
 *   l!<name(key)>                     → <ts> + value (or <ts> alone: a deletion): the newest version of key
 *   f!                                → the store format, decimal ascii (FORMAT)
 *   g!                                → '1' when the values and records live under L! and X! instead of l! and x!
 *
 * A snapshot is staged under the tags the state does not use (L! and X!, or
 * l! and x!), and its commit switches `g!` over in the batch that clears the
 * run records: the old generation's keys are cleared afterwards.
 *
 * `ts` is the 36-char text timestamp, whose byte order is timestamp order.
 * Epoch and seq are fixed-width hex, so one coordinator's batches of one
 * epoch sort by seq and a seq range is one key range.
 * `name(s)` is an order-preserving, prefix-free encoding of any JS string (see
 * encodeName), so `l!<name(k)>` never prefixes another key's entry. Only each
 * key's newest version is on disk; the versions before it live in memory for
 * a window (VersionWindow).
 */

export const TAG_BATCH = 'b'
export const TAG_RUN = 'r'
export const TAG_TXN = 'x'
export const TAG_META = 'm'
export const TAG_LATEST = 'l'
/** The tags of values and records in the other generation (see `g!`). */
export const TAG_TXN_1 = 'X'
export const TAG_LATEST_1 = 'L'

export type Tag = typeof TAG_BATCH | typeof TAG_RUN | typeof TAG_TXN | typeof TAG_META | typeof TAG_LATEST | typeof TAG_TXN_1 | typeof TAG_LATEST_1

/** Where a generation keeps values and records. */
export interface Generation {
  readonly n: 0 | 1
  readonly latest: typeof TAG_LATEST | typeof TAG_LATEST_1
  readonly txn: typeof TAG_TXN | typeof TAG_TXN_1
}

export const GENERATIONS: readonly [Generation, Generation] = [{ n: 0, latest: TAG_LATEST, txn: TAG_TXN }, { n: 1, latest: TAG_LATEST_1, txn: TAG_TXN_1 }]
/** The generation record's key (outside every tag's range). */
export const GENERATION_KEY: Buffer = Buffer.from('g!', 'latin1')

/** Length of a tag and its `!`. */
export const TAG_LENGTH = 2
export const TS_LENGTH = 36
const NUM_DIGITS = 14 // Number.MAX_SAFE_INTEGER is 14 hex digits
/** The highest epoch or seq a key can hold. */
export const MAX_NUM = Number.MAX_SAFE_INTEGER

/**
 * The layout this code reads and writes, kept under FORMAT_KEY. Format 1 (no
 * record) kept per-thunk records and an unsettled index; 2 kept batches and
 * every version and outcome; 3 keeps each key's newest version and one
 * outcome record per settled run; 4 adds the generation record (a format 3
 * store is format 4 in generation 0); 5 starts every value with a CRC-32 of
 * its key and value (`checked.ts`). A format 3 or 4 store is sealed when
 * opened.
 */
export const FORMAT = 5
/** Outside every tag's range, and so outside the protocol's meta namespace. */
export const FORMAT_KEY: Buffer = Buffer.from('f!', 'latin1')

/**
 * Encodes a string by UTF-16 code unit (so lone surrogates survive and byte
 * order equals JS string order): units below 0x7f as one byte unit+1, others
 * as three bytes 0x80|unit>>14, unit>>7&0x7f, unit&0x7f; then a 0 byte. No
 * unit encoding starts with 0, so the terminator makes names prefix-free and
 * sorts a name before its extensions.
 */
export function encodeName (s: string): number[] {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x7f) out.push(c + 1)
    else out.push(0x80 | (c >> 14), (c >> 7) & 0x7f, c & 0x7f)
  }
  out.push(0)
  return out
}

function unitsToString (units: readonly number[]): string {
  // fromCharCode in slices: spreading a very long key would overflow the stack.
  let s = ''
  for (let i = 0; i < units.length; i += 4096) s += String.fromCharCode(...units.slice(i, i + 4096))
  return s
}

/** Decodes a name at `start`; returns it and the offset after its terminator. */
export function decodeName (bytes: Uint8Array, start: number): [string, number] {
  const units: number[] = []
  let i = start
  for (;;) {
    const b = bytes[i]
    if (b === undefined) throw new RangeError('unterminated name in key')
    if (b === 0) return [unitsToString(units), i + 1]
    if (b < 0x80) { units.push(b - 1); i++; continue }
    units.push(((b & 0x03) << 14) | ((bytes[i + 1] ?? 0) << 7) | (bytes[i + 2] ?? 0))
    i += 3
  }
}

function ascii (out: number[], s: string): void {
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i))
}

function num (n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`epoch and seq must be non-negative safe integers, got ${n}`)
  return n.toString(16).padStart(NUM_DIGITS, '0')
}

function tagged (tag: Tag): number[] {
  return [tag.charCodeAt(0), 0x21]
}

/** The tag's whole range: `gte` its prefix, `lt` the next byte after `!`. */
export function tagRange (tag: Tag): { gte: Buffer, lt: Buffer } {
  return { gte: Buffer.from(tagged(tag)), lt: Buffer.from([tag.charCodeAt(0), 0x22]) }
}

/** `r!<ts>`: the outcomes of the run whose last thunk is at `ts`. */
export function runKey (ts: Timestamp): Buffer {
  const out = tagged(TAG_RUN)
  ascii(out, ts)
  return Buffer.from(out)
}

export function tsOfRunKey (key: Buffer): Timestamp {
  return key.toString('latin1', TAG_LENGTH, TAG_LENGTH + TS_LENGTH) as Timestamp
}

/** `<tag>!<name>` for exactly-once records and meta. */
export function nameKey (tag: Tag, name: string): Buffer {
  const out = tagged(tag)
  out.push(...encodeName(name))
  return Buffer.from(out)
}

export function nameOfNameKey (key: Buffer): string {
  return decodeName(key, TAG_LENGTH)[0]
}

/**
 * A key no entry ever has (it is never put): deleting it gives a strict batch
 * that changes nothing something to sync.
 */
export const SYNC_KEY: Buffer = Buffer.from('z!', 'latin1')

/** `b!<name(coordinator)><epoch>`: every batch of that coordinator in that epoch starts with it. */
export function batchPrefix (coordinator: string, epoch: number): Buffer {
  const out = tagged(TAG_BATCH)
  out.push(...encodeName(coordinator))
  ascii(out, num(epoch))
  return Buffer.from(out)
}

/** `prefix<seq>` without re-encoding the coordinator's name. */
export function withSeq (prefix: Buffer, seq: number): Buffer {
  return Buffer.concat([prefix, Buffer.from(num(seq), 'latin1')])
}

export function batchKey (coordinator: string, epoch: number, seq: number): Buffer {
  return withSeq(batchPrefix(coordinator, epoch), seq)
}

/** The seq a batch key ends with. */
export function seqOfBatchKey (key: Buffer): number {
  return parseInt(key.toString('latin1', key.length - NUM_DIGITS), 16)
}
