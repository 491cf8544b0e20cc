import zlib from 'node:zlib'
import { StoreCorruptionError } from '@tideline/core'
import { TAG_LENGTH, decodeName } from './keys.js'

/** CRC-32 (IEEE), by table, for a Node without `zlib.crc32` (before 20.15). */
let table: Uint32Array | undefined
function crc32Js (bytes: Uint8Array, crc: number): number {
  if (table === undefined) {
    table = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      table[n] = c >>> 0
    }
  }
  let c = (crc ^ 0xffffffff) >>> 0
  for (let i = 0; i < bytes.length; i++) c = ((table[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)) >>> 0
  return (c ^ 0xffffffff) >>> 0
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32
const crc32: (bytes: Uint8Array, crc: number) => number = native !== undefined ? (b, c) => native(b, c) : crc32Js

/** Length of the check in front of every stored value. */
export const CHECK_LENGTH = 4

/**
 * Every value LevelStore puts starts with a CRC-32 of its key and of the
 * bytes after it: a flipped bit, a record cut short, or another record's bytes
 * under this key (a misdirected write) fail it. LevelDB checks its own blocks
 * too, but only with `paranoidChecks` and not across a write that landed in
 * the wrong place.
 */
export function seal (key: Uint8Array, value: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(CHECK_LENGTH + value.length)
  out.writeUInt32BE(crc32(value, crc32(key, 0)), 0)
  out.set(value, CHECK_LENGTH)
  return out
}

/** The value a sealed entry holds, or undefined when it fails its check. */
export function unsealed (key: Uint8Array, stored: Buffer): Buffer | undefined {
  if (stored.length < CHECK_LENGTH) return undefined
  const value = stored.subarray(CHECK_LENGTH)
  return stored.readUInt32BE(0) === crc32(value, crc32(key, 0)) ? value : undefined
}

/** The value a sealed entry holds; StoreCorruptionError naming the record when it fails its check. */
export function unseal (key: Uint8Array, stored: Buffer): Buffer {
  const value = unsealed(key, stored)
  if (value === undefined) throw new StoreCorruptionError(`LevelStore record ${describeKey(key)} failed its check (damaged on disk)`)
  return value
}

/** A key as an operator reads it: the tag, then the name (values, records, meta) or the rest as text. */
export function describeKey (key: Uint8Array): string {
  const tag = String.fromCharCode(key[0] ?? 0x3f)
  if ('lLxXm'.includes(tag)) {
    try {
      return `${tag}!${JSON.stringify(decodeName(key, TAG_LENGTH)[0])}`
    } catch {}
  }
  if (tag === 'b') {
    try {
      const [coordinator, at] = decodeName(key, TAG_LENGTH)
      const rest = Buffer.from(key).toString('latin1', at)
      return `b!${coordinator} epoch ${parseInt(rest.slice(0, 14), 16)} seq ${parseInt(rest.slice(14), 16)}`
    } catch {}
  }
  return Buffer.from(key).toString('latin1')
}
