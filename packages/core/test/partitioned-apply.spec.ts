import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AHEAD, EVAL, FORWARD, Hasher, MemoryStore, TS_INFINITY, TS_ZERO, applyRunSync, createRegistry, declaredKeys, makeTimestamp, partitionOf, peerTag, thunkParts, type Cursor, type ForwardedReads, type PartitionSpec, type RunPlan, type RunRules, type Thunk, type Tx, type TxnResult, type Value } from '../src/index.js'

// Partitioned evaluation (DESIGN.md §13): replicas that each hold some
// partitions evaluate the thunks that write into them, with what the thunks
// read elsewhere forwarded by that partition's replicas as of just before
// them. Whatever each replica holds and however its runs are cut, every
// replica that evaluates a thunk must get the full replica's result, and
// hold exactly the full replica's values of its partitions.

const spec: PartitionSpec = { count: 3, assign: { a: 0, b: 1, c: 2 } }
type Move = { from: string, to: string, n: number }
const procedures = {
  move: {
    keys: (m: Move) => ({ reads: [m.from, m.to], writes: [m.from, m.to] }),
    run: (tx: Tx, m: Move) => {
      const from = (tx.get(m.from) as number | undefined) ?? 10
      if (from < m.n) return tx.abort('short')
      tx.put(m.from, from - m.n)
      tx.put(m.to, ((tx.get(m.to) as number | undefined) ?? 10) + m.n)
      return from
    }
  },
  /** Reads one key, writes another (possibly in another partition). */
  copy: {
    keys: (c: { from: string, to: string }) => ({ reads: [c.from], writes: [c.to] }),
    run: (tx: Tx, c: { from: string, to: string }) => { const v = tx.get(c.from); if (v === undefined) tx.delete(c.to); else tx.put(c.to, v); return v ?? null }
  },
  /** Counts a scope's keys (a declared range) into a key of any partition. */
  count: {
    keys: (c: { scope: string, to: string }) => ({ reads: [], writes: [c.to], ranges: [{ prefix: `${c.scope}/` }] }),
    run: (tx: Tx, c: { scope: string, to: string }) => { const e = tx.range({ prefix: `${c.scope}/` }); tx.put(c.to, e.length); return e.map(([k]) => k) }
  },
  del: {
    keys: (d: { k: string }) => ({ reads: [], writes: [d.k] }),
    run: (tx: Tx, d: { k: string }) => { tx.delete(d.k); return null }
  },
  /** Reads keys, writes none: evaluated where it reads. */
  look: {
    keys: (l: { keys: string[] }) => ({ reads: l.keys, writes: [] }),
    run: (tx: Tx, l: { keys: string[] }) => l.keys.map(k => tx.get(k) ?? null)
  }
}
const registry = createRegistry(procedures)
const rules: RunRules = { txnRetentionMs: 60_000, txnSkewMs: 1_000, groupId: 'g', signedCalls: false, revoked: [], partitions: spec }
const fresh = (): Cursor => ({ frontier: TS_ZERO, last: TS_ZERO, count: 0, digest: new Hasher().state, evalNext: {} })

function thunk (seq: number, procedure: keyof typeof procedures, args: Value): Thunk {
  const proc = registry.procedures.get(procedure)
  if (proc === undefined) throw new Error(procedure)
  return { ts: makeTimestamp(1_000 + seq, peerTag('c'), seq), epoch: 0, coordinator: 'c', seq, index: 0, procedure, hash: proc.hash, args, ...declaredKeys(proc, args), clientTxnId: `t${seq}`, firstAt: 1_000 + seq }
}

/** One replica holding some partitions, stepping through the history in runs as an evaluator would. */
class Replica {
  readonly store = new MemoryStore()
  cursor = fresh()
  next = 0
  readonly results = new Map<number, TxnResult>()
  readonly held: Set<number>
  /** Index of a thunk whose reads this replica already forwarded ahead of evaluating it. */
  aheadDone = -1
  constructor (readonly holding: readonly number[]) { this.held = new Set(holding) }

  /** Takes one run of at most `max` thunks; forwards go to `board`. Answers whether it moved. */
  step (history: readonly Thunk[], board: Map<number, ForwardedReads[]>, max: number): boolean {
    const run: Thunk[] = []
    const modes: number[] = []
    const remote: Array<readonly ForwardedReads[] | undefined> = []
    let i = this.next
    while (i < history.length && run.length < max) {
      const t = history[i] as Thunk
      const parts = thunkParts(t, spec)
      const evaluates = [...parts.active].some(p => this.held.has(p))
      const forwards = parts.cross && [...parts.reads].some(p => this.held.has(p))
      if (!evaluates && !forwards) { i++; continue }
      let mode = (evaluates ? EVAL : 0) | (forwards && this.aheadDone !== i ? FORWARD : 0)
      if (evaluates) {
        const missing = [...parts.reads].filter(p => !this.held.has(p))
        const got = board.get(i) ?? []
        if (!missing.every(p => got.some(f => f.parts.includes(p)))) {
          // Waits for others: forward what it holds first, once, and stop.
          if ((mode & FORWARD) !== 0) { run.push(t); modes.push(FORWARD | AHEAD); remote.push(undefined); this.aheadDone = i }
          break
        }
        remote.push(got)
      } else {
        remote.push(undefined)
      }
      if (mode === 0) mode = EVAL
      run.push(t)
      modes.push(mode)
      i++
    }
    if (run.length === 0) { const moved = i !== this.next; this.next = i; return moved }
    const plan: RunPlan = { holding: this.holding, modes, remote }
    const applied = applyRunSync(this.store, registry, run, this.cursor, rules, undefined, plan)
    this.cursor = applied.cursor
    let f = 0
    run.forEach((t, j) => {
      const at = history.indexOf(t)
      if (((modes[j] as number) & FORWARD) !== 0) board.set(at, [...(board.get(at) ?? []), (applied.forwards as ForwardedReads[])[f++] as ForwardedReads])
      const r = applied.results[j]
      if (r !== undefined) this.results.set(at, r)
    })
    this.next = ((modes[modes.length - 1] as number) & AHEAD) !== 0 ? history.indexOf(run[run.length - 1] as Thunk) : i
    return true
  }
}

describe('partitioned evaluation', () => {
  it('gives every evaluating replica the full replica\'s results, and each the full replica\'s values of what it holds', () => {
    const key = fc.constantFrom('a/1', 'a/2', 'b/1', 'b/2', 'c/1', 'c/2')
    const op = fc.oneof(
      fc.record({ p: fc.constant('move' as const), args: fc.record({ from: key, to: key, n: fc.integer({ min: 1, max: 8 }) }) }),
      fc.record({ p: fc.constant('copy' as const), args: fc.record({ from: key, to: key }) }),
      fc.record({ p: fc.constant('count' as const), args: fc.record({ scope: fc.constantFrom('a', 'b', 'c'), to: key }) }),
      fc.record({ p: fc.constant('del' as const), args: fc.record({ k: key }) }),
      fc.record({ p: fc.constant('look' as const), args: fc.record({ keys: fc.uniqueArray(key, { minLength: 1, maxLength: 3 }) }) })
    )
    const holdings = fc.constantFrom([[0], [1], [2]], [[0, 1], [2], [1, 2]], [[0], [1, 2], [0, 2]])
    fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), holdings, fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 1000 }), (ops, hold, maxes, order) => {
      const history = ops.map((o, i) => thunk(i + 1, o.p, o.args as Value))
      const full = new MemoryStore()
      const expected = applyRunSync(full, registry, history, fresh(), rules).results
      const replicas = hold.map(h => new Replica(h))
      const board = new Map<number, ForwardedReads[]>()
      // Replicas step in an order the seed picks; together they always get through.
      for (let round = 0; round < 10 * history.length + 10; round++) {
        let moved = false
        replicas.forEach((_, j) => {
          const r = replicas[(j + order + round) % replicas.length] as Replica
          if (r.step(history, board, maxes[j] as number)) moved = true
        })
        if (!moved) break
      }
      for (const r of replicas) {
        // Exactly the thunks it evaluates have a result here, and each is the full replica's.
        const mine = history.map((t, i) => [...thunkParts(t, spec).active].some(p => r.held.has(p)) ? i : -1).filter(i => i >= 0)
        expect([...r.results.keys()].sort((x, y) => x - y)).toEqual(mine)
        expect(mine.map(i => r.results.get(i))).toEqual(mine.map(i => expected[i]))
      }
      const want = full.entriesSync(TS_INFINITY)
      for (const r of replicas) {
        expect(r.store.entriesSync(TS_INFINITY)).toEqual(want.filter(([k]) => r.held.has(partitionOf(k, spec))))
      }
    }), { numRuns: 300 })
  })

  it('aborts a declared range that spans scopes on every replica, with a named error', () => {
    const bad = { ...thunk(1, 'count', { scope: 'a', to: 'b/1' }), ranges: [{ start: 'a/', end: 'c' }] }
    const applied = applyRunSync(new MemoryStore(), registry, [bad], fresh(), rules, undefined, { holding: [1], modes: [EVAL], remote: [[]] })
    expect(applied.results[0]).toMatchObject({ status: 'aborted', error: 'PartitionRangeError' })
  })
})
