import { DEFAULT_MAX_VALUE_BYTES, MAX_VALUE_DEPTH } from './constants.js'
import { InvalidValueError, ValueTooLargeError } from './errors.js'

/** Data a key can hold or a procedure can take: structured-cloneable JSON-like data and bytes. */
export type Value =
  | null | boolean | number | string | Uint8Array
  | readonly Value[]
  | { readonly [key: string]: Value }

function isPlainObject (v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** Bytes as lowercase hex (signatures on the wire, bytes in canonical text). */
export function toHex (bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += HEX[b]
  return s
}

/** The bytes of lowercase hex (validated where it comes from a peer). */
export function fromHex (hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}

function encodeInto (v: unknown, out: string[], depth: number): void {
  if (depth > MAX_VALUE_DEPTH) throw new InvalidValueError(`value nested deeper than ${MAX_VALUE_DEPTH}`)
  switch (typeof v) {
    case 'string': out.push(JSON.stringify(v)); return
    case 'number':
      if (!Number.isFinite(v)) throw new InvalidValueError('numbers must be finite')
      out.push(Object.is(v, -0) ? '0' : String(v)); return
    case 'boolean': out.push(v ? 'true' : 'false'); return
    case 'object': {
      if (v === null) { out.push('null'); return }
      if (v instanceof Uint8Array) {
        out.push(`b"${toHex(v)}"`)
        return
      }
      if (Array.isArray(v)) {
        out.push('[')
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out.push(',')
          encodeInto(v[i], out, depth + 1)
        }
        out.push(']')
        return
      }
      if (!isPlainObject(v)) throw new InvalidValueError('only plain objects, arrays, strings, numbers, booleans, null and Uint8Array are values')
      const obj = v as Record<string, unknown>
      const keys = Object.keys(obj).sort()
      out.push('{')
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string
        if (i > 0) out.push(',')
        out.push(JSON.stringify(k), ':')
        encodeInto(obj[k], out, depth + 1)
      }
      out.push('}')
      return
    }
    default:
      throw new InvalidValueError(`${typeof v} is not a value`)
  }
}

/**
 * The canonical text of a value: object keys sorted, bytes as hex. Equal values
 * have equal encodings on every peer, so it feeds digests and size limits.
 * Throws InvalidValueError for anything that is not a Value.
 */
export function canonical (v: unknown): string {
  if (typeof v === 'number' && Number.isFinite(v)) return Object.is(v, -0) ? '0' : String(v)
  const out: string[] = []
  encodeInto(v, out, 0)
  return out.join('')
}

/** Size of `v` in canonical form (near enough for limits), validating as it goes; builds no strings. */
function measure (v: unknown, depth: number): number {
  if (depth > MAX_VALUE_DEPTH) throw new InvalidValueError(`value nested deeper than ${MAX_VALUE_DEPTH}`)
  switch (typeof v) {
    case 'string': return v.length + 2
    case 'number':
      if (!Number.isFinite(v)) throw new InvalidValueError('numbers must be finite')
      return 8
    case 'boolean': return 5
    case 'object': {
      if (v === null) return 4
      if (v instanceof Uint8Array) return v.length * 2 + 3
      let n = 2
      if (Array.isArray(v)) {
        for (const item of v) n += measure(item, depth + 1) + 1
        return n
      }
      if (!isPlainObject(v)) throw new InvalidValueError('only plain objects, arrays, strings, numbers, booleans, null and Uint8Array are values')
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue
        n += k.length + 4 + measure((v as Record<string, unknown>)[k], depth + 1)
      }
      return n
    }
    default:
      throw new InvalidValueError(`${typeof v} is not a value`)
  }
}

/**
 * Checks that `v` is a Value no larger than `maxBytes` in canonical form and
 * returns its size. Errors are deterministic: every replica decides alike.
 */
export function checkValue (v: unknown, maxBytes = DEFAULT_MAX_VALUE_BYTES): number {
  const size = measure(v, 0)
  if (size > maxBytes) throw new ValueTooLargeError(`value encodes to about ${size} bytes, more than ${maxBytes}`)
  return size
}

/** A deep copy, so no caller can change a value a store holds. */
export function cloneValue<V extends Value | undefined> (v: V): V {
  if (v === null || typeof v !== 'object') return v
  return structuredClone(v)
}
