import { decode, encode } from 'cborg'
import { InvalidMessageError, fromHex, toHex, type Batch, type Message } from '@tideline/core'

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

/**
 * A batch on the wire carries its epoch, coordinator and seq once: its thunks
 * leave out those three and their index, which the receiver puts back from
 * the batch and the thunk's position (decodeFrame). That is about a third of
 * a small thunk's bytes and CBOR items. A projection (`projected`: some of a
 * batch's thunks, for an observer of some partitions) keeps each thunk's index.
 */
function compactBatches (batches: readonly Batch[]): unknown[] {
  return batches.map(b => ({
    epoch: b.epoch,
    coordinator: b.coordinator,
    seq: b.seq,
    ...(b.projected === true ? { projected: true } : {}),
    ...(b.n === undefined ? {} : { n: b.n }),
    ...(b.set === undefined ? {} : { set: b.set }),
    // The signature as its 64 bytes, a projection's digests as 32 bytes each (zeros for a thunk it holds): half their hex.
    ...(b.sig === undefined ? {} : { sig: fromHex(b.sig) }),
    ...(b.digests === undefined ? {} : { digests: packDigests(b.digests) }),
    thunks: b.thunks.map(t => ({ ts: t.ts, ...(b.projected === true ? { index: t.index } : {}), procedure: t.procedure, hash: t.hash, args: t.args, reads: t.reads, writes: t.writes, ...(t.ranges === undefined ? {} : { ranges: t.ranges }), clientTxnId: t.clientTxnId, firstAt: t.firstAt, ...(t.caller === undefined ? {} : { caller: t.caller }) }))
  }))
}

function compact (m: Message): unknown {
  switch (m.t) {
    case 'write': return { ...m, batches: compactBatches(m.batches) }
    case 'gap-rep': return { ...m, batches: compactBatches(m.batches) }
    case 'rc-promise': return { ...m, report: { ...m.report, held: compactBatches(m.report.held) } }
    case 'rc-accept':
    case 'rc-decided': return { ...m, value: { ...m.value, batches: compactBatches(m.value.batches) } }
    // The tree's signed entries: the signature as its 64 bytes.
    case 'tw': return { ...m, sig: fromHex(m.sig) }
    default: return m
  }
}

const DIGEST_BYTES = 32

function packDigests (digests: readonly string[]): Uint8Array {
  const out = new Uint8Array(digests.length * DIGEST_BYTES)
  digests.forEach((d, i) => { if (d !== '') out.set(fromHex(d), i * DIGEST_BYTES) })
  return out
}

function unpackDigests (bytes: Uint8Array): string[] | undefined {
  if (bytes.byteLength % DIGEST_BYTES !== 0) return undefined
  return Array.from({ length: bytes.byteLength / DIGEST_BYTES }, (_, i) => {
    const d = bytes.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES)
    return d.every(x => x === 0) ? '' : toHex(d)
  })
}

/** Puts each thunk's batch fields back, in place, wherever the shape allows (and a signature and digests as hex); validation judges the rest. */
function expandBatches (batches: unknown): void {
  if (!Array.isArray(batches)) return
  for (const b of batches as unknown[]) {
    if (typeof b !== 'object' || b === null) continue
    const r = b as Record<string, unknown>
    if (r.sig instanceof Uint8Array) r.sig = toHex(r.sig)
    if (r.digests instanceof Uint8Array) r.digests = unpackDigests(r.digests) ?? 'malformed'
    const { epoch, coordinator, seq, thunks, projected } = r
    if (!Array.isArray(thunks)) continue
    for (let i = 0; i < thunks.length; i++) {
      const t = thunks[i] as unknown
      if (typeof t !== 'object' || t === null || Array.isArray(t)) continue
      // A projection's thunks carry their own index (validation checks it ascends).
      Object.assign(t, { epoch, coordinator, seq, ...(projected === true ? {} : { index: i }) })
    }
  }
}

function expand (m: unknown): unknown {
  if (typeof m !== 'object' || m === null) return m
  const r = m as Record<string, unknown>
  const inner = (x: unknown, field: string): unknown => typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[field] : undefined
  if (r.t === 'write' || r.t === 'gap-rep') expandBatches(r.batches)
  else if (r.t === 'rc-promise') expandBatches(inner(r.report, 'held'))
  else if (r.t === 'rc-accept' || r.t === 'rc-decided') expandBatches(inner(r.value, 'batches'))
  else if (r.t === 'tw' && r.sig instanceof Uint8Array) r.sig = toHex(r.sig)
  return m
}

/** One frame: a bundle (CBOR array) of messages for the same destination. */
export function encodeMessages (messages: readonly Message[]): Uint8Array {
  return encode(messages.map(compact))
}

/**
 * Decodes one frame into an unvalidated value (the Peer validates it): throws
 * InvalidMessageError for anything that is not exactly one well-formed CBOR item.
 */
export function decodeFrame (frame: Uint8Array): unknown {
  if (frame.byteLength > MAX_FRAME_BYTES) throw new InvalidMessageError(`frame of ${frame.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`)
  let decoded: unknown
  try {
    decoded = decode(frame, DECODE_OPTIONS)
  } catch (err) {
    // RangeError from absurd nesting included: a hostile frame never escapes as anything but this.
    throw new InvalidMessageError(`undecodable frame: ${(err as Error).message}`, { cause: err })
  }
  if (Array.isArray(decoded)) for (const m of decoded as unknown[]) expand(m)
  return decoded
}
