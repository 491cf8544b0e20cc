import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Hasher, MemoryStore, TS_ZERO, applyRunSync, createRegistry, declaredKeys, makeTimestamp, peerTag, storeApplier, type Cursor, type RunRules, type Thunk, type Tx, type Value } from '../src/index.js'

// Procedures that declare key ranges and read them with tx.range: the keys a
// range holds are part of the read set, evaluated at ts - 1 on every replica,
// so how runs are cut and which applier runs them cannot change a result.

type Scan = { prefix: string, limit?: number, reverse?: boolean }
const procedures = {
  put: {
    keys: (a: { k: string, v: number }) => ({ reads: [], writes: [a.k] }),
    run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null }
  },
  del: {
    keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { tx.delete(a.k); return null }
  },
  /** Lists a prefix, and writes into it itself first (its own write shows), then counts into `n/<prefix>`. */
  scan: {
    keys: (a: Scan & { own?: string }) => ({ reads: [], writes: [`n/${a.prefix}`, ...(a.own === undefined ? [] : [a.own])], ranges: [{ prefix: a.prefix }] }),
    run: (tx: Tx, a: Scan & { own?: string }) => {
      if (a.own !== undefined) tx.put(a.own, -1)
      const entries = tx.range({ prefix: a.prefix }, { ...(a.limit === undefined ? {} : { limit: a.limit }), reverse: a.reverse === true })
      tx.put(`n/${a.prefix}`, entries.length)
      return entries as unknown as Value
    }
  },
  /** Reads outside what it declared. */
  outside: {
    keys: () => ({ reads: [], writes: [], ranges: [{ start: 'l/a', end: 'l/c' }] }),
    run: (tx: Tx) => tx.range({ prefix: 'l/' }) as unknown as Value
  },
  /** Reads one key of a declared range with tx.get, and a narrower range inside it. */
  inside: {
    keys: () => ({ reads: [], writes: [], ranges: [{ prefix: 'l/' }] }),
    run: (tx: Tx) => ({ one: tx.get('l/a') ?? null, some: tx.range({ start: 'l/a', end: 'l/c' }).map(([k]) => k) })
  }
}
const registry = createRegistry(procedures)
const tag = peerTag('c')
const rules: RunRules = { txnRetentionMs: 60_000, txnSkewMs: 1_000, groupId: 'g', signedCalls: false, revoked: [] }
const fresh = (): Cursor => ({ frontier: TS_ZERO, last: TS_ZERO, count: 0, digest: new Hasher().state, evalNext: {} })

function thunk (seq: number, procedure: keyof typeof procedures, args: Value): Thunk {
  const proc = registry.procedures.get(procedure)
  if (proc === undefined) throw new Error(procedure)
  return { ts: makeTimestamp(1_000 + seq, tag, seq), epoch: 0, coordinator: 'c', seq, index: 0, procedure, hash: proc.hash, args, ...declaredKeys(proc, args), clientTxnId: `t${seq}`, firstAt: 1_000 + seq }
}

/** The same history on a sorted map, one operation at a time: what a range read must see. */
function model (ops: ReadonlyArray<{ p: 'put' | 'del' | 'scan', args: Record<string, unknown> }>): unknown[] {
  const state = new Map<string, number>()
  return ops.map(({ p, args }) => {
    if (p === 'put') { state.set(args.k as string, args.v as number); return null }
    if (p === 'del') { state.delete(args.k as string); return null }
    const a = args as Scan & { own?: string }
    if (a.own !== undefined) state.set(a.own, -1)
    let entries = [...state].filter(([k]) => k.startsWith(a.prefix)).sort(([x], [y]) => (x < y ? -1 : 1))
    if (a.reverse === true) entries.reverse()
    if (a.limit !== undefined) entries = entries.slice(0, a.limit)
    state.set(`n/${a.prefix}`, entries.length)
    return entries
  })
}

describe('procedures that declare key ranges', () => {
  it('see exactly the keys live just before them, whatever the run cuts and applier (cached or not), as a sorted map would', async () => {
    const key = fc.constantFrom('l/a', 'l/b', 'l/c', 'l/b/1', 'lz', 'm/a', 'n/l/')
    const op = fc.oneof(
      fc.record({ p: fc.constant('put' as const), args: fc.record({ k: key, v: fc.integer({ min: 0, max: 99 }) }) }),
      fc.record({ p: fc.constant('del' as const), args: fc.record({ k: key }) }),
      fc.record({
        p: fc.constant('scan' as const),
        args: fc.record({ prefix: fc.constantFrom('l/', 'l/b', 'm/', 'l'), limit: fc.integer({ min: 1, max: 3 }), reverse: fc.boolean(), own: key }, { requiredKeys: ['prefix'] })
      })
    )
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 24 }), fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 24, maxLength: 24 }), async (ops, cuts) => {
      const thunks = ops.map((o, i) => thunk(i + 1, o.p, o.args as Value))
      const expected = model(ops)
      // One applier per way of running: one run per thunk (sync), cut into runs (sync), cut into runs (async, value cache on).
      const singles = new MemoryStore()
      let base = fresh()
      const one: unknown[] = []
      for (const t of thunks) { const a = applyRunSync(singles, registry, [t], base, rules); one.push(...a.results.map(r => r?.status === "committed" ? r.value : r)); base = a.cursor }
      const cutStore = new MemoryStore()
      const cachedStore = new MemoryStore()
      const apply = storeApplier({ store: cachedStore, registry })
      let [b1, b2] = [fresh(), fresh()]
      const cut: unknown[] = []
      const cached: unknown[] = []
      for (let i = 0, c = 0; i < thunks.length; i += cuts[c++] as number) {
        const run = thunks.slice(i, i + (cuts[c] as number))
        const a = applyRunSync(cutStore, registry, run, b1, rules)
        const b = await apply(run, b2, rules)
        cut.push(...a.results.map(r => r?.status === "committed" ? r.value : r))
        cached.push(...b.results.map(r => r?.status === "committed" ? r.value : r))
        b1 = a.cursor
        b2 = b.cursor
      }
      expect(one).toEqual(expected)
      expect(cut).toEqual(expected)
      expect(cached).toEqual(expected)
      expect(b1.digest).toEqual(base.digest)
      expect(b2.digest).toEqual(base.digest)
    }), { numRuns: 150 })
  })

  it('abort a range read outside the declared ranges (UndeclaredKeyError) and allow gets and narrower ranges inside them', () => {
    const store = new MemoryStore()
    const run = [thunk(1, 'put', { k: 'l/a', v: 1 }), thunk(2, 'put', { k: 'l/d', v: 4 }), thunk(3, 'put', { k: 'l/b', v: 2 }), thunk(4, 'outside', null), thunk(5, 'inside', null)]
    const out = applyRunSync(store, registry, run, fresh(), rules).results
    expect(out[3]).toMatchObject({ status: 'aborted', error: 'UndeclaredKeyError' })
    expect(out[4]).toMatchObject({ status: 'committed', value: { one: 1, some: ['l/a', 'l/b'] } })
  })

  it('refuse a malformed range declaration at submission with a named error', () => {
    const bad = createRegistry({ bad: { keys: () => ({ reads: [], writes: [], ranges: [{ start: 3 }] }), run: () => null } } as never)
    const proc = bad.procedures.get('bad')
    if (proc === undefined) throw new Error('bad')
    expect(() => declaredKeys(proc, null)).toThrow(expect.objectContaining({ name: 'ProcedureError' }) as Error)
  })
})
