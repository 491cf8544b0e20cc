import { sha256 } from '@noble/hashes/sha2.js'
import type { Batch, CheckpointReport, DurableReport, Thunk, WatermarkEntry } from './types.js'
import { canonical, toHex } from './value.js'

/**
 * Signed batches (issue 23, `docs/design/tabs.md`): a coordinator signs each
 * batch once, so that any member can pass it on and every receiver can check
 * its author. The statement commits to every thunk by its SHA-256 digest, so
 * a projection (some of the thunks) stays checkable: it carries the digests
 * of the thunks it leaves out, and the receiver hashes the ones it has.
 */

const DOMAIN = 'tideline/batch/1'
const encoder = new TextEncoder()

/** A thunk's digest is computed once per thunk object (a batch is projected for many feeds). */
const digests = new WeakMap<Thunk, string>()

/** A thunk's fields, and only those: what its digest covers, and all a forwarded copy keeps. */
export function thunkFields (t: Thunk): Thunk {
  return {
    ts: t.ts,
    epoch: t.epoch,
    coordinator: t.coordinator,
    seq: t.seq,
    index: t.index,
    procedure: t.procedure,
    hash: t.hash,
    args: t.args,
    reads: t.reads,
    writes: t.writes,
    // Optional fields rebuilt without absent keys: a key present with no value has no canonical text.
    ...(t.ranges === undefined ? {} : { ranges: t.ranges.map(r => r.end === undefined ? { start: r.start } : { start: r.start, end: r.end }) }),
    clientTxnId: t.clientTxnId,
    firstAt: t.firstAt,
    ...(t.caller === undefined ? {} : { caller: { id: t.caller.id, sig: t.caller.sig, ...(t.caller.invite === undefined ? {} : { invite: t.caller.invite }) } })
  }
}

/** The SHA-256 of a thunk's canonical text (its fields only), hex. */
export function thunkDigest (t: Thunk): string {
  let d = digests.get(t)
  if (d === undefined) {
    d = toHex(sha256(encoder.encode(canonical(thunkFields(t)))))
    digests.set(t, d)
  }
  return d
}

/** Every thunk's digest by index, from a whole batch or a projection with its `digests`; undefined when some are missing. */
function allDigests (b: Batch): string[] | undefined {
  const n = b.projected === true ? (b.n ?? b.thunks.length) : b.thunks.length
  const out: Array<string | undefined> = Array.from({ length: n }, (_, i) => b.projected === true && b.digests?.[i] !== '' ? b.digests?.[i] : undefined)
  for (const t of b.thunks) {
    if (t.index >= n) return undefined
    out[t.index] = thunkDigest(t)
  }
  return out.every(d => typeof d === 'string' && d.length === 64) ? out as string[] : undefined
}

/** What a coordinator signs for batch `b` of group `groupId` (whole, or a projection with its digests); undefined for a projection missing some. */
export function batchStatement (groupId: string, b: Batch): Uint8Array | undefined {
  const ds = allDigests(b)
  if (ds === undefined) return undefined
  return encoder.encode(canonical({ domain: DOMAIN, group: groupId, epoch: b.epoch, coordinator: b.coordinator, seq: b.seq, n: ds.length, digests: ds.join('') }))
}

/**
 * A projection's `digests`, of `source` (a whole batch, or a projection with
 * its own): by index, the digest of each thunk that `kept` leaves out, ''
 * for the kept ones. Undefined when `source` is unsigned (nothing to check).
 */
export function projectionDigests (source: Batch, kept: readonly Thunk[]): string[] | undefined {
  if (source.sig === undefined) return undefined
  const n = source.projected === true ? (source.n ?? source.thunks.length) : source.thunks.length
  const out = Array.from({ length: n }, (_, i) => source.projected === true ? (source.digests?.[i] ?? '') : '')
  for (const t of source.thunks) if (t.index < n) out[t.index] = thunkDigest(t)
  for (const t of kept) if (t.index < n) out[t.index] = ''
  return out
}

/**
 * A forwarded batch as its signature covers it: the signed fields only
 * (a forwarder cannot add a replica set or anything else unsigned).
 */
export function signedFields (b: Batch): Batch {
  return {
    epoch: b.epoch,
    coordinator: b.coordinator,
    seq: b.seq,
    thunks: b.thunks.map(thunkFields),
    ...(b.sig === undefined ? {} : { sig: b.sig }),
    ...(b.projected === true ? { projected: true as const, n: b.n ?? b.thunks.length, ...(b.digests === undefined ? {} : { digests: b.digests }) } : {})
  }
}

const ENTRIES_DOMAIN = 'tideline/entries/1'

/**
 * What voter `by` signs for a tree watermark message (tree.ts): the entries
 * and durable reports it passes down, each by its fields only, as text
 * (`entriesStatement` is its bytes).
 */
export function entriesText (groupId: string, m: TreeWatermark): string {
  const wm = m.wm.map(e => ({ voter: e.voter, epoch: e.epoch, svw: e.svw, count: e.count, ...(e.tails === undefined ? {} : { tails: [...e.tails] }) }))
  const dur = (m.dur ?? []).map(d => ({ voter: d.voter, durable: d.durable, gc: d.gc }))
  const ck = (m.ck ?? []).map(c => ({ voter: c.voter, count: c.count, digest: c.digest }))
  return canonical({ domain: ENTRIES_DOMAIN, group: groupId, by: m.by, at: m.at, wm, dur, ck })
}

/** What a tree watermark message's signature covers. */
interface TreeWatermark { readonly at: number, readonly wm: readonly WatermarkEntry[], readonly dur?: readonly DurableReport[], readonly ck?: readonly CheckpointReport[], readonly by: string }

export function entriesStatement (groupId: string, m: TreeWatermark): Uint8Array {
  return encoder.encode(entriesText(groupId, m))
}
