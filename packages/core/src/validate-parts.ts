import { arr, fail, int, keyRange, keys, MAX_KEY, obj, signature, str, ts } from './validate-basics.js'
import { checkValue } from './value.js'

/**
 * Checks the messages of partitioned evaluation (messages.ts: fwd, fwd-req,
 * res, res-req), as validate.ts does the others: InvalidMessageError on
 * anything malformed.
 */

/** Most thunks one forward or result message covers, and most entries one thunk's forward carries. */
const MAX_ITEMS = 4096
const MAX_ENTRIES = 65_536

function forwarded (x: unknown, maxValueBytes: number): number {
  const f = obj(x, 'forwarded reads')
  ts(f.ts, 'forwarded ts')
  for (const p of arr(f.parts, 'forwarded parts', 256)) int(p, 'forwarded partition')
  let bytes = 0
  for (const e of arr(f.values, 'forwarded values', MAX_ENTRIES)) {
    const pair = arr(e, 'forwarded value', 2)
    if (pair.length !== 2 || pair[1] === undefined) fail('forwarded value must be [key, value]')
    str(pair[0], 'forwarded key', MAX_KEY)
    try {
      bytes += checkValue(pair[1], maxValueBytes)
    } catch (err) {
      fail(`forwarded value: ${(err as Error).message}`)
    }
  }
  for (const r of arr(f.ranges, 'forwarded ranges', 1024)) {
    const triple = arr(r, 'forwarded range', 3)
    if (triple.length !== 3) fail('forwarded range must be [start, end, keys]')
    str(triple[0], 'forwarded range start', MAX_KEY)
    if (triple[1] !== null) str(triple[1], 'forwarded range end', MAX_KEY)
    for (const k of arr(triple[2], 'forwarded range keys', MAX_ENTRIES)) str(k, 'forwarded range key', MAX_KEY)
  }
  return bytes
}

export function partitionMessage (m: Record<string, unknown>, maxValueBytes: number, maxKeys: number): void {
  switch (m.t) {
    case 'fwd': {
      let bytes = 0
      for (const f of arr(m.items, 'items', MAX_ITEMS)) bytes += forwarded(f, maxValueBytes)
      if (bytes > 4 * Math.max(maxValueBytes, 1 << 20)) fail('forwarded reads too large')
      break
    }
    case 'fwd-req':
      for (const x of arr(m.items, 'items', 256)) {
        const r = obj(x, 'forward request')
        ts(r.ts, 'forward request ts')
        keys(r.keys, 'forward request keys', maxKeys)
        if (r.ranges !== undefined) for (const g of arr(r.ranges, 'forward request ranges', 64)) keyRange(g, 'forward request range')
      }
      break
    case 'res-req':
      for (const t of arr(m.stamps, 'stamps', 256)) ts(t, 'stamp')
      break
    case 'wm-want':
      ts(m.ts, 'ts')
      break
    case 'pst-req':
      ts(m.at, 'at')
      for (const q of arr(m.parts, 'parts', 256)) int(q, 'partition')
      break
    case 'pst-rep':
      ts(m.at, 'at')
      for (const e of arr(m.states, 'states', 256)) {
        const t = arr(e, 'state', 3)
        if (t.length !== 1 && t.length !== 3) fail('a partition state is [partition] or [partition, lane, lane]')
        int(t[0], 'partition')
        for (const l of t.slice(1)) if (typeof l !== 'number' || !Number.isInteger(l) || l < 0 || l > 0xffffffff) fail('state lanes must be 32-bit unsigned integers')
      }
      break
    case 'res':
      for (const x of arr(m.items, 'items', MAX_ITEMS)) {
        const r = obj(x, 'result item')
        ts(r.ts, 'result item ts')
        str(r.clientTxnId, 'result item clientTxnId')
        const result = obj(r.result, 'result')
        if (result.status !== 'committed' && result.status !== 'aborted') fail('result.status')
        ts(result.ts, 'result.ts')
        if (result.status === 'aborted') { str(result.error, 'result.error'); if (typeof result.reason !== 'string') fail('result.reason') }
      }
      break
  }
}

/** A cursor's partition digests: [partition, lane, lane], ascending by partition. */
export function partsField (x: unknown, what: string): void {
  if (x === undefined) return
  let last = -1
  for (const e of arr(x, what, 256)) {
    const t = arr(e, what, 3)
    if (t.length !== 3) fail(`${what} entries must be [partition, lane, lane]`)
    const q = int(t[0], what)
    if (q <= last) fail(`${what} must be ascending and distinct`)
    last = q
    for (const l of t.slice(1)) if (typeof l !== 'number' || !Number.isInteger(l) || l < 0 || l > 0xffffffff) fail(`${what} lanes must be 32-bit unsigned integers`)
  }
}

/** A partitioned replica's holding as a cursor carries it: distinct partition numbers, ascending. */
export function holdingField (x: unknown, what: string): void {
  if (x === undefined) return
  let last = -1
  for (const p of arr(x, what, 256)) {
    const n = int(p, what)
    if (n <= last) fail(`${what} must be ascending and distinct`)
    last = n
  }
}

/** The fields an observer following some partitions gets or sends (feeds.ts): a span, its partitions. */
export function feedFields (m: Record<string, unknown>): void {
  if (m.span !== undefined) {
    const x = obj(m.span, 'span')
    // Named on a gap answer (any voter's); the sender itself on a write or wm.
    if (m.t === 'gap-rep') str(x.coordinator, 'span.coordinator')
    else if (x.coordinator !== undefined) fail('span.coordinator is the sender on a write or wm: it must not be named')
    int(x.epoch, 'span.epoch')
    const from = int(x.from, 'span.from', 1)
    if (int(x.to, 'span.to', 1) < from || (x.to as number) - from > 1 << 20) fail('span must run from its from to its to, at most 2^20 seqs')
  }
  if (m.h !== undefined && m.t === 'gap-req') holdingField(m.h, 'h')
  // A voter gone quiet says so on its entries (quiesce.ts).
  if (m.quiet !== undefined && (m.t !== 'wm' || m.quiet !== true)) fail('quiet is only on a wm, and only true')
  // A voter handing over says so on its entries (promise.ts `publish`).
  if (m.leaving !== undefined && (m.t !== 'wm' || m.leaving !== true)) fail('leaving is only on a wm, and only true')
}

/** Watermark entries (a `tails` entry is at most the entry's count). */
export function wm (x: unknown): void {
  for (const item of arr(x, 'wm', 64)) {
    const e = obj(item, 'wm entry')
    str(e.voter, 'wm.voter')
    int(e.epoch, 'wm.epoch')
    ts(e.svw, 'wm.svw')
    const count = int(e.count, 'wm.count')
    if (e.tails !== undefined) for (const t of arr(e.tails, 'wm.tails', 256)) if (int(t, 'wm.tails entry') > count) fail('wm.tails entries are at most wm.count')
  }
}

/** Where a tree message points (a peer id, at most 8 addresses of at most 512 characters). */
function place (parent: unknown, addrs: unknown, what: string): void {
  if (parent !== undefined) str(parent, `${what}.parent`)
  if (addrs !== undefined) for (const a of arr(addrs, `${what}.addrs`, 8)) str(a, `${what}.addrs entry`, 512)
}

/** The dissemination tree's fields (tree.ts): a hello's `tree`, a `place`, a `tw`. */
export function treeFields (m: Record<string, unknown>): void {
  if (m.tree !== undefined) {
    if (m.t !== 'hello') fail('tree is only on a hello')
    const t = obj(m.tree, 'tree')
    place(t.parent, t.addrs, 'tree')
    int(t.size, 'tree.size', 1)
    if (t.not !== undefined) for (const p of arr(t.not, 'tree.not', 8)) str(p, 'tree.not entry')
  }
  if (m.t === 'place') place(m.parent, m.addrs, 'place')
  if (m.t === 'tw') {
    int(m.at, 'at')
    wm(m.wm)
    str(m.by, 'by')
    if (m.ck !== undefined) {
      for (const x of arr(m.ck, 'ck', 64)) {
        const c = obj(x, 'ck entry')
        str(c.voter, 'ck.voter')
        int(c.count, 'ck.count', 1)
        str(c.digest, 'ck.digest', 64)
      }
    }
    signature(m.sig, 'sig')
    if (m.dur !== undefined) {
      for (const x of arr(m.dur, 'dur', 64)) {
        const d = obj(x, 'dur entry')
        str(d.voter, 'dur.voter')
        ts(d.durable, 'dur.durable')
        ts(d.gc, 'dur.gc')
      }
    }
  }
}
