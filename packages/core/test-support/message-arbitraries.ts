import fc from 'fast-check'
import { makeTimestamp, type Timestamp } from '../src/timestamp.js'
import type { Message } from '../src/messages.js'
import type { Ballot, Batch, EpochChange, Thunk, WatermarkEntry } from '../src/types.js'
import { toHex } from '../src/value.js'

/**
 * fast-check arbitraries for well-formed protocol messages (property tests
 * of validation and of the wire codec).
 */

const id = fc.string({ minLength: 1, maxLength: 12 })
const key = fc.string({ minLength: 1, maxLength: 24 })
const hexTag = fc.stringMatching(/^[0-9a-f]{16}$/)

export const arbTimestamp: fc.Arbitrary<Timestamp> = fc.tuple(fc.integer({ min: 0, max: 2 ** 40 }), hexTag, fc.integer({ min: 0, max: 2 ** 20 }))
  .map(([ms, tag, event]) => makeTimestamp(ms, tag, event))

const jsonValue = fc.jsonValue({ maxDepth: 3 }).map(v => JSON.parse(JSON.stringify(v)) as unknown)
/** A signature in hex (Ed25519: 64 bytes). */
const arbSig = fc.uint8Array({ minLength: 64, maxLength: 64 }).map(b => [...b].map(x => x.toString(16).padStart(2, '0')).join(''))
const arbCaller = fc.record({ id, sig: arbSig })

export const arbThunk: fc.Arbitrary<Thunk> = fc.record({
  ts: arbTimestamp,
  epoch: fc.nat(1000),
  coordinator: id,
  seq: fc.integer({ min: 1, max: 1e6 }),
  index: fc.nat(1000),
  procedure: id,
  hash: id,
  args: jsonValue,
  reads: fc.array(key, { maxLength: 4 }),
  writes: fc.array(key, { maxLength: 4 }),
  ranges: fc.array(fc.record({ start: key, end: key }, { requiredKeys: ['start'] }), { maxLength: 2 }),
  clientTxnId: id,
  firstAt: fc.nat(2 ** 40),
  caller: arbCaller
}, { requiredKeys: ['ts', 'epoch', 'coordinator', 'seq', 'index', 'procedure', 'hash', 'args', 'reads', 'writes', 'clientTxnId', 'firstAt'] }) as fc.Arbitrary<Thunk>

/** 32 or 64 bytes as hex, never all zeros (the codec sends a projection's held thunks' digests as zeros). */
const arbHexBytes = (n: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: n, maxLength: n }).map(b => toHex(Uint8Array.from(b, (x, i) => i === 0 ? x | 1 : x)))

/** A well-formed batch: its thunks carry its header, numbered from 0, in ascending timestamps; some are signed. */
export const arbBatch: fc.Arbitrary<Batch> = fc.record({
  epoch: fc.nat(1000),
  coordinator: id,
  seq: fc.integer({ min: 1, max: 1e6 }),
  thunks: fc.array(arbThunk, { minLength: 1, maxLength: 3 }),
  sig: fc.option(arbHexBytes(64), { nil: undefined })
}).map(({ sig, ...b }) => {
  const stamps = [...new Set(b.thunks.map(t => t.ts))].sort()
  const thunks = stamps.map((ts, index) => ({ ...(b.thunks[index] as Thunk), ts, epoch: b.epoch, coordinator: b.coordinator, seq: b.seq, index }))
  return { ...b, thunks, ...(sig === undefined ? {} : { sig }) }
})

/** A projection (feeds.ts): a batch's thunks with indices ascending, with gaps; a signed one carries `n` and the left-out thunks' digests. */
export const arbProjected: fc.Arbitrary<Batch> = fc.tuple(arbBatch, fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 3, maxLength: 3 }), fc.array(arbHexBytes(32), { minLength: 16, maxLength: 16 })).map(([b, gaps, ds]) => {
  let index = -1
  const thunks = b.thunks.map((t, i) => ({ ...t, index: (index += gaps[i] as number) }))
  if (b.sig === undefined) return { ...b, projected: true as const, thunks }
  const n = index + 1
  const held = new Set(thunks.map(t => t.index))
  return { ...b, projected: true as const, thunks, n, digests: Array.from({ length: n }, (_, i) => held.has(i) ? '' : ds[i] as string) }
})

const arbSpan = fc.record({ epoch: fc.nat(1000), from: fc.integer({ min: 1, max: 1000 }), len: fc.nat(1000) }).map(({ len, ...x }) => ({ ...x, to: x.from + len }))
const arbGapSpan = fc.tuple(arbSpan, id).map(([x, coordinator]) => ({ ...x, coordinator }))

export const arbEntry: fc.Arbitrary<WatermarkEntry> = fc.record({ voter: id, epoch: fc.nat(1000), svw: arbTimestamp, count: fc.nat(1e6) })

const arbBallot: fc.Arbitrary<Ballot> = fc.record({ n: fc.integer({ min: 1, max: 1e6 }), by: id })

const arbChange: fc.Arbitrary<EpochChange> = fc.record({
  epoch: fc.integer({ min: 1, max: 1000 }),
  voters: fc.uniqueArray(id, { minLength: 1, maxLength: 7 }),
  cuts: fc.array(fc.record({ coordinator: id, end: fc.integer({ min: 5, max: 100 }), skip: fc.uniqueArray(fc.integer({ min: 1, max: 5 }), { maxLength: 3 }) }), { maxLength: 4 }),
  floor: arbTimestamp,
  batches: fc.array(arbBatch, { maxLength: 3 })
})

const arbCursor = fc.record({
  frontier: arbTimestamp,
  last: arbTimestamp,
  count: fc.nat(1e6),
  digest: fc.tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 32 }), fc.integer({ min: -(2 ** 31), max: 2 ** 32 }), fc.nat(1e6)),
  evalNext: fc.dictionary(id, fc.integer({ min: 1, max: 1e6 }), { maxKeys: 3 }),
  evalIndex: fc.dictionary(id, fc.nat(100), { maxKeys: 3 }),
  epoch: fc.nat(1000)
})

const arbSnapshotChunk = fc.record({
  id,
  at: arbTimestamp,
  cursor: arbCursor,
  chunk: fc.nat(100),
  last: fc.boolean(),
  digest: fc.string({ minLength: 1, maxLength: 16 }),
  entries: fc.array(fc.tuple(key, jsonValue.filter(v => v !== undefined)), { maxLength: 3 }),
  txns: fc.array(fc.tuple(id, arbTimestamp.map(ts => `${ts}c`)), { maxLength: 3 })
}).map(({ digest, ...c }) => {
  // An empty chunk only as the last; the last carries the digest.
  const last = c.last || c.entries.length + c.txns.length === 0
  return { t: 'snap-chunk' as const, ...c, last, ...(last ? { digest } : {}) }
}) as fc.Arbitrary<Message>

export const arbMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ t: fc.constant('write' as const), batches: fc.array(arbBatch, { maxLength: 3 }), wm: fc.array(arbEntry, { maxLength: 3 }) }),
  fc.record({ t: fc.constant('ack' as const), epoch: fc.nat(1000), seqs: fc.array(fc.integer({ min: 1, max: 1e6 }), { maxLength: 8 }), wm: fc.array(arbEntry, { maxLength: 3 }) }),
  fc.record({ t: fc.constant('wm' as const), wm: fc.array(arbEntry, { maxLength: 3 }) }),
  fc.record({ t: fc.constant('write' as const), batches: fc.array(arbProjected, { maxLength: 3 }), wm: fc.array(arbEntry, { maxLength: 1 }), span: arbSpan }),
  fc.record({ t: fc.constant('wm' as const), wm: fc.array(arbEntry, { maxLength: 1 }), span: arbSpan }),
  fc.record({ t: fc.constant('wm' as const), wm: fc.array(arbEntry, { maxLength: 1 }), quiet: fc.constant(true as const) }),
  fc.record({ t: fc.constant('wm' as const), wm: fc.array(arbEntry, { maxLength: 1 }), leaving: fc.constant(true as const) }, { requiredKeys: ['t', 'wm'] }),
  fc.record({ t: fc.constant('wm-want' as const), ts: arbTimestamp }),
  fc.record({ t: fc.constant('gap-rep' as const), batches: fc.array(arbProjected, { maxLength: 3 }), span: arbGapSpan }),
  fc.record({ t: fc.constant('gap-req' as const), coordinator: id, epoch: fc.nat(1000), from: fc.integer({ min: 1, max: 1e6 }), to: fc.integer({ min: 1, max: 1e6 }), h: fc.uniqueArray(fc.nat(255), { maxLength: 4 }).map(h => h.sort((a, b) => a - b)) }),
  fc.record({ t: fc.constant('gap-req' as const), coordinator: id, epoch: fc.nat(1000), from: fc.integer({ min: 1, max: 1e6 }), to: fc.integer({ min: 1, max: 1e6 }) }),
  fc.record({ t: fc.constant('gap-rep' as const), batches: fc.array(arbBatch, { maxLength: 3 }) }),
  fc.record({ t: fc.constant('gap-rep' as const), batches: fc.constant([]), gone: fc.record({ coordinator: id, epoch: fc.nat(1000), from: fc.integer({ min: 1, max: 1e6 }) }) }),
  fc.record({ t: fc.constant('submit' as const), req: fc.record({ clientTxnId: id, procedure: id, hash: id, args: jsonValue, firstAt: fc.nat(2 ** 40), caller: arbCaller }, { requiredKeys: ['clientTxnId', 'procedure', 'hash', 'args'] }), replyTo: id }) as fc.Arbitrary<Message>,
  fc.record({ t: fc.constant('read' as const), reqId: id, keys: fc.array(key, { maxLength: 4 }), consistency: fc.constantFrom('strict' as const, 'snapshot' as const), replyTo: id }),
  fc.record({ t: fc.constant('ts-req' as const), reqId: id }),
  fc.record({ t: fc.constant('ts-rep' as const), reqId: id, ts: arbTimestamp }),
  fc.record({ t: fc.constant('ck' as const), count: fc.integer({ min: 1, max: 1e6 }), digest: fc.string({ minLength: 1, maxLength: 64 }) }),
  fc.record({ t: fc.constant('hello' as const), epoch: fc.nat(1000), candidate: fc.boolean() }),
  fc.record({ t: fc.constant('hello' as const), epoch: fc.nat(1000), tree: fc.record({ parent: id, size: fc.integer({ min: 1, max: 1000 }), addrs: fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 3 }), not: fc.array(id, { maxLength: 3 }) }, { requiredKeys: ['size'] }) }),
  fc.record({ t: fc.constant('place' as const), parent: id, addrs: fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 3 }) }, { requiredKeys: ['t'] }),
  fc.record({ t: fc.constant('tw' as const), at: fc.nat(2 ** 40), wm: fc.array(arbEntry, { maxLength: 3 }), dur: fc.array(fc.record({ voter: id, durable: arbTimestamp, gc: arbTimestamp }), { maxLength: 3 }), ck: fc.array(fc.record({ voter: id, count: fc.integer({ min: 1, max: 1e6 }), digest: fc.string({ minLength: 1, maxLength: 64 }) }), { maxLength: 3 }), by: id, sig: arbHexBytes(64) }, { requiredKeys: ['t', 'at', 'wm', 'by', 'sig'] }),
  fc.record({ t: fc.constant('confirm' as const), epoch: fc.nat(1000), round: fc.integer({ min: 1, max: 1e6 }) }),
  fc.record({ t: fc.constant('confirmed' as const), epoch: fc.nat(1000), round: fc.integer({ min: 1, max: 1e6 }) }),
  fc.record({ t: fc.constant('rc-prepare' as const), epoch: fc.nat(1000), ballot: arbBallot }),
  fc.record({ t: fc.constant('rc-accept' as const), epoch: fc.nat(1000), ballot: arbBallot, value: arbChange }),
  fc.record({ t: fc.constant('rc-accepted' as const), epoch: fc.nat(1000), ballot: arbBallot, sig: arbSig }, { requiredKeys: ['t', 'epoch', 'ballot'] }),
  fc.record({ t: fc.constant('rc-nack' as const), epoch: fc.nat(1000), ballot: arbBallot }),
  fc.record({ t: fc.constant('rc-decided' as const), value: arbChange, proof: fc.record({ ballot: arbBallot, sigs: fc.array(fc.record({ voter: id, sig: arbSig }), { maxLength: 5 }) }) }, { requiredKeys: ['t', 'value'] }),
  fc.record({ t: fc.constant('rc-fetch' as const), epoch: fc.nat(1000) }),
  fc.record({ t: fc.constant('dur' as const), durable: arbTimestamp, gc: arbTimestamp }),
  fc.record({ t: fc.constant('snap-req' as const), id, chunk: fc.nat(1e6) }),
  fc.record({ t: fc.constant('snap-no' as const), id, why: fc.constantFrom('healing', 'behind', 'exports full') }),
  arbSnapshotChunk
)

/**
 * Junk built from a valid message: one field (at any depth) replaced by an
 * arbitrary value, or a field removed. Some of these are still valid.
 */
export const arbMangled: fc.Arbitrary<unknown> = fc.tuple(arbMessage, fc.anything(), fc.nat(), fc.boolean()).map(([m, junk, pick, remove]) => {
  const copy = structuredClone(m) as unknown as Record<string, unknown>
  const paths: Array<[Record<string, unknown> | unknown[], string | number]> = []
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach((v, i) => { paths.push([x, i]); walk(v) })
    else if (x !== null && typeof x === 'object') for (const k of Object.keys(x)) { paths.push([x as Record<string, unknown>, k]); walk((x as Record<string, unknown>)[k]) }
  }
  walk(copy)
  const at = paths[pick % Math.max(1, paths.length)]
  if (at === undefined) return junk
  const [parent, k] = at
  if (remove && !Array.isArray(parent)) delete parent[k as string]
  else (parent as Record<string | number, unknown>)[k] = junk
  return copy
})

/** The name of what `fn` threw, or undefined if it returned. */
export function thrown (fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as Error).name
  }
}
