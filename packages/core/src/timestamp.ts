import { InvalidTimestampError } from './errors.js'
import { hash64 } from './hash.js'

/**
 * A globally unique timestamp `(milliseconds, peerTag, event)`, kept in its
 * canonical sortable text form: 12 hex digits of milliseconds, 16 of the peer
 * tag, 8 of the event counter. Plain string comparison is the total order.
 */
export type Timestamp = string & { readonly __timestamp: true }

export interface TimestampParts {
  readonly ms: number
  /** 16 lowercase hex digits (64 bits) derived from the peer id. */
  readonly tag: string
  readonly event: number
}

const MS_DIGITS = 12
const TAG_DIGITS = 16
const EVENT_DIGITS = 8
export const TIMESTAMP_LENGTH = MS_DIGITS + TAG_DIGITS + EVENT_DIGITS
const MAX_MS = 2 ** 48 - 1
const MAX_EVENT = 2 ** 32 - 1
const TS_RE = /^[0-9a-f]{36}$/

/** Lower than every timestamp any peer mints. */
export const TS_ZERO = '0'.repeat(TIMESTAMP_LENGTH) as Timestamp
/** Higher than every timestamp any peer mints. */
export const TS_INFINITY = 'f'.repeat(TIMESTAMP_LENGTH) as Timestamp

export function makeTimestamp (ms: number, tag: string, event: number): Timestamp {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_MS) throw new InvalidTimestampError(`milliseconds out of range: ${ms}`)
  if (!Number.isInteger(event) || event < 0 || event > MAX_EVENT) throw new InvalidTimestampError(`event out of range: ${event}`)
  if (tag.length !== TAG_DIGITS) throw new InvalidTimestampError('peer tag must be 16 hex digits')
  return (ms.toString(16).padStart(MS_DIGITS, '0') + tag + event.toString(16).padStart(EVENT_DIGITS, '0')) as Timestamp
}

export function parseTimestamp (ts: Timestamp): TimestampParts {
  return {
    ms: parseInt(ts.slice(0, MS_DIGITS), 16),
    tag: ts.slice(MS_DIGITS, MS_DIGITS + TAG_DIGITS),
    event: parseInt(ts.slice(MS_DIGITS + TAG_DIGITS), 16)
  }
}

/** The 16-hex-digit tag of the peer that minted `ts`. */
export function timestampTag (ts: Timestamp): string {
  return ts.slice(MS_DIGITS, MS_DIGITS + TAG_DIGITS)
}

export function timestampMs (ts: Timestamp): number {
  return parseInt(ts.slice(0, MS_DIGITS), 16)
}

export function isTimestamp (x: unknown): x is Timestamp {
  return typeof x === 'string' && TS_RE.test(x)
}

export function compareTimestamps (a: Timestamp, b: Timestamp): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0
}

export function maxTimestamp (a: Timestamp, b: Timestamp): Timestamp {
  return a > b ? a : b
}

export function minTimestamp (a: Timestamp, b: Timestamp): Timestamp {
  return a < b ? a : b
}

/** The 18-byte big-endian binary form; bytewise order equals timestamp order. */
export function timestampToBytes (ts: Timestamp): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_LENGTH / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(ts.slice(i * 2, i * 2 + 2), 16)
  return out
}

export function timestampFromBytes (bytes: Uint8Array): Timestamp {
  if (bytes.length !== TIMESTAMP_LENGTH / 2) throw new InvalidTimestampError(`a timestamp is ${TIMESTAMP_LENGTH / 2} bytes, got ${bytes.length}`)
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s as Timestamp
}

/** The 64-bit peer tag of a peer id. */
export function peerTag (peerId: string): string {
  return hash64(peerId, 0x7469)
}

/**
 * Mints strictly increasing timestamps for one peer, whatever its clock does:
 * when the clock stalls or steps back, the event counter moves on instead.
 */
export class TimestampMinter {
  readonly tag: string
  private lastMs = 0
  private lastEvent = -1

  constructor (tag: string) {
    this.tag = tag
  }

  /** The next timestamp, strictly above every one minted or observed before. */
  mint (nowMs: number): Timestamp {
    const ms = Math.floor(nowMs)
    if (ms > this.lastMs) {
      this.lastMs = Math.min(ms, MAX_MS)
      this.lastEvent = 0
    } else if (this.lastEvent < MAX_EVENT) {
      this.lastEvent++
    } else {
      this.lastMs++
      this.lastEvent = 0
    }
    return makeTimestamp(this.lastMs, this.tag, this.lastEvent)
  }

  /** Never mint at or below `ts` from now on (recovery floors, hybrid-clock raises). */
  floor (ts: Timestamp): void {
    const p = parseTimestamp(ts)
    if (p.tag === this.tag) {
      if (p.ms > this.lastMs || (p.ms === this.lastMs && p.event > this.lastEvent)) {
        this.lastMs = p.ms
        this.lastEvent = p.event
      }
      return
    }
    // Another peer's timestamp: in its millisecond ours order by tag, so a higher tag needs the next millisecond.
    const ms = p.tag < this.tag ? p.ms : p.ms + 1
    if (ms > this.lastMs) {
      this.lastMs = Math.min(ms, MAX_MS)
      this.lastEvent = -1
    }
  }

  /** Never mint in a millisecond below `ms`. */
  floorMs (ms: number): void {
    if (ms > this.lastMs) {
      this.lastMs = ms
      this.lastEvent = -1
    }
  }

  get lastMillis (): number {
    return this.lastMs
  }
}

/**
 * The greatest timestamp below `ts` (TS_ZERO stays TS_ZERO): the version
 * time a store gives values it knows only as "the state below ts" (a
 * snapshot's), so reads at or above `ts` see them and older reads do not.
 */
export function timestampPredecessor (ts: Timestamp): Timestamp {
  if (ts === TS_ZERO) return ts
  return (BigInt(`0x${ts}`) - 1n).toString(16).padStart(TIMESTAMP_LENGTH, '0') as Timestamp
}

/** The least timestamp above `ts`: "everything up to and including ts" as an exclusive bound. */
export function timestampSuccessor (ts: Timestamp): Timestamp {
  const p = parseTimestamp(ts)
  return p.event < MAX_EVENT ? makeTimestamp(p.ms, p.tag, p.event + 1) : makeTimestamp(p.ms + 1, p.tag, 0)
}
