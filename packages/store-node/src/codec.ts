import v8 from 'node:v8'
import type { Value } from '@tideline/core'

/**
 * Values, thunks and outcomes go through V8's structured serializer: it keeps
 * Uint8Array, -0 and nested data as `structuredClone` (MemoryStore) does, and
 * ships with Node, so there is no dependency to pin for it.
 */
export function encode (value: unknown): Buffer {
  return v8.serialize(value)
}

/** Node's (untyped) hook that reads an ArrayBufferView written by DefaultSerializer. */
interface HostObjectReader { _readHostObject (): unknown }
const baseReadHostObject = (d: v8.Deserializer): unknown =>
  (v8.DefaultDeserializer.prototype as unknown as HostObjectReader)._readHostObject.call(d)

/**
 * Node's deserializer returns byte arrays as views into the buffer LevelDB
 * handed us (often a shared pool slab); each is copied into its own exact-size
 * Uint8Array so callers never see or keep alive foreign bytes, and a Buffer
 * comes back as a plain Uint8Array as structuredClone would return it.
 */
class ValueDeserializer extends v8.DefaultDeserializer {
  _readHostObject (): unknown {
    const view = baseReadHostObject(this)
    return view instanceof Uint8Array ? new Uint8Array(view) : view
  }
}

export function decode<T = Value> (bytes: Uint8Array): T {
  const d = new ValueDeserializer(bytes)
  d.readHeader()
  return d.readValue() as T
}

/** A deletion: no serialized value is ever empty (V8 writes a header). */
export const TOMBSTONE: Buffer = Buffer.alloc(0)
