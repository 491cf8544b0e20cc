import { decode, encode } from 'cborg'
import { InvalidMessageError, type Message } from '@tideline/core'

/**
 * Wire codec: a frame is one CBOR item (RFC 8949), an array of protocol
 * messages, sent length-prefixed (unsigned varint) on a stream. CBOR keeps `Uint8Array` values as bytes, is about
 * half the size of JSON for thunks, and cborg decodes it without eval or
 * prototype tricks (a `__proto__` key stays a plain own key).
 */

/** Largest frame a peer accepts; a larger length prefix is refused before reading the body. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024

const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: true,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false
} as const

/** One frame: a bundle (CBOR array) of messages for the same destination. */
export function encodeMessages (messages: readonly Message[]): Uint8Array {
  return encode(messages)
}

/**
 * Decodes one frame into an unvalidated value (the Peer validates it): throws
 * InvalidMessageError for anything that is not exactly one well-formed CBOR item.
 */
export function decodeFrame (frame: Uint8Array): unknown {
  if (frame.byteLength > MAX_FRAME_BYTES) throw new InvalidMessageError(`frame of ${frame.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`)
  try {
    return decode(frame, DECODE_OPTIONS)
  } catch (err) {
    // RangeError from absurd nesting included: a hostile frame never escapes as anything but this.
    throw new InvalidMessageError(`undecodable frame: ${(err as Error).message}`, { cause: err })
  }
}
