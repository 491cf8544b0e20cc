import { InvalidMessageError } from './errors.js'
import { isTimestamp } from './timestamp.js'

/** The checks every message validator is built from: each throws InvalidMessageError naming what is wrong. */

export const MAX_ID = 256
export const MAX_KEY = 1024

export function fail (what: string): never {
  throw new InvalidMessageError(what)
}

export function str (x: unknown, what: string, max = MAX_ID): string {
  if (typeof x !== 'string' || x.length === 0 || x.length > max) fail(`${what} must be a non-empty string of at most ${max} chars`)
  return x
}

export function int (x: unknown, what: string, min = 0): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < min) fail(`${what} must be an integer >= ${min}`)
  return x
}

export function obj (x: unknown, what: string): Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) fail(`${what} must be an object`)
  return x as Record<string, unknown>
}

export function arr (x: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(x)) fail(`${what} must be an array`)
  if (x.length > max) fail(`${what} has ${x.length} items, more than ${max}`)
  return x
}

export function ts (x: unknown, what: string): void {
  if (!isTimestamp(x)) fail(`${what} must be a timestamp`)
}

export function keys (x: unknown, what: string, max: number): void {
  for (const k of arr(x, what, max)) str(k, what, MAX_KEY)
}

/** A signature in hex (Ed25519's is 64 bytes; room for larger schemes). */
export function signature (x: unknown, what: string): void {
  const sig = str(x, what, 512)
  if (sig.length === 0 || sig.length > 512 || sig.length % 2 !== 0 || !/^[0-9a-f]+$/.test(sig)) fail(`${what} must be an even number (at most 512) of lowercase hex digits`)
}

/** A key range `{ start, end? }`: strings of at most MAX_KEY chars (the start may be empty: from the first key). */
export function keyRange (x: unknown, what: string): void {
  const r = obj(x, what)
  if (typeof r.start !== 'string' || r.start.length > MAX_KEY) fail(`${what}.start must be a string of at most ${MAX_KEY} chars`)
  if ('end' in r && (typeof r.end !== 'string' || r.end.length > MAX_KEY)) fail(`${what}.end must be a string of at most ${MAX_KEY} chars, or absent`)
}

/** A range read `{ range, limit?, reverse? }`. */
export function rangeRead (x: unknown, what: string): void {
  const r = obj(x, what)
  keyRange(r.range, `${what}.range`)
  if (r.limit !== undefined) int(r.limit, `${what}.limit`, 1)
  if (r.reverse !== undefined && typeof r.reverse !== 'boolean') fail(`${what}.reverse must be a boolean`)
}
