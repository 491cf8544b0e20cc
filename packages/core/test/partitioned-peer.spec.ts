import { describe, expect, it } from 'vitest'
import { partitionOf, type Batch, type PartitionSpec, type Tx, type TxnResult } from '../src/index.js'
import { spannedChunks } from '../src/protocol/feeds.js'
import { TestGroup } from './harness.js'
import { accounts, call, move, total, type Move } from './moves.js'

// A partitioned group of Peers (the production driver, on a manual clock):
// six voters in two replica sets, accounts spread over four partitions.
// Transfers within and across partitions commit through any voter with the
// same results everywhere they are evaluated, each voter holds only its
// set's accounts, and strict reads through any peer (the observer of one
// partition too) see the exact total.

const spec: PartitionSpec = { count: 4, replicas: 3, depth: 2 }
const procedures = {
  move,
  /** Counts accounts over a range that spans every account's scope: not allowed in a partitioned group. */
  countAll: {
    keys: () => ({ reads: [], writes: ['n'], ranges: [{ prefix: 'acct/' }] }),
    run: (tx: Tx) => { tx.put('n', tx.range({ prefix: 'acct/' }).length); return null }
  }
}

describe('a partitioned group', () => {
  it('commits transfers within and across partitions through any voter, each voter holding its set\'s partitions, and strict reads see the exact total', async () => {
    const g = await TestGroup.create(procedures, 6, 1, {}, { partitions: spec })
    const parts = accounts.map(a => partitionOf(a, spec))
    expect(new Set(parts).size).toBeGreaterThan(1)
    const cross = accounts.findIndex(a => partitionOf(a, spec) !== parts[0])
    const moves: Move[] = []
    for (let i = 0; i < 24; i++) moves.push({ from: accounts[i % 8] as string, to: accounts[(i * 3 + 1) % 8] as string, n: 1 + (i % 5) })
    moves.push({ from: accounts[0] as string, to: accounts[cross] as string, n: 500 })
    const results: TxnResult[] = []
    for (let i = 0; i < moves.length; i++) results.push(await call(g, `v${i % 6}`, `m${i}`, moves[i] as Move))
    // Every result is what the calls one after another would give (a value read from another partition wrong shows here),
    // and the overdraft aborts the same way whoever coordinates it.
    const model = new Map(accounts.map(a => [a, 100]))
    const expected = moves.map(m => {
      const from = model.get(m.from) as number
      if (from < m.n) return 'insufficient funds'
      model.set(m.from, from - m.n)
      model.set(m.to, (model.get(m.to) as number) + m.n)
      return from - m.n
    })
    expect(results.map(r => r.status === 'committed' ? r.value : r.reason)).toEqual(expected)
    for (const via of ['v0', 'v1', 'v4', 'o0']) expect(await total(g, via)).toBe(800)
    // Each voter's store holds values of its own set's partitions only.
    for (let v = 0; v < 6; v++) {
      const held = new Set(g.peer(`v${v}`).status().holding)
      expect(held.size).toBeGreaterThan(0)
      const stored = (g.stores.get(`v${v}`) as NonNullable<ReturnType<typeof g.stores.get>>).entriesSync('f'.repeat(36) as never).map(([k]) => partitionOf(k, spec))
      expect(stored.every(q => held.has(q))).toBe(true)
    }
  })

  it('refuses a call declaring, or a read of, a range that spans scopes, with PartitionRangeError', async () => {
    const g = await TestGroup.create(procedures, 6, 0, {}, { partitions: spec })
    const called = await g.run(g.peer('v2').submit({ clientTxnId: 'c', procedure: 'countAll', hash: g.hash('countAll'), args: null }))
    expect(called.done && 'error' in called ? called.error.name : called).toBe('PartitionRangeError')
    const read = await g.run(g.peer('v3').read({ range: { start: 'acct/' } }))
    expect(read.done && 'error' in read ? read.error.name : read).toBe('PartitionRangeError')
  })
})

/** The observer o0's strict read of partition `q`'s accounts gives what the moves (none overdrawn) leave. */
async function expectLocalBalances (g: TestGroup, q: number, moves: readonly Move[]): Promise<void> {
  const model = new Map(accounts.map(a => [a, 100]))
  for (const m of moves) { model.set(m.from, (model.get(m.from) as number) - m.n); model.set(m.to, (model.get(m.to) as number) + m.n) }
  const local = accounts.filter(a => partitionOf(a, spec) === q)
  const out = await g.run(g.peer('o0').read(local), 5000)
  if (!out.done || !('value' in out)) throw new Error('the observer\'s read did not complete')
  expect(local.map(a => out.value.values[a] ?? 100)).toEqual(local.map(a => model.get(a)))
}

describe('an observer of one partition', () => {
  it('receives only the thunks it evaluates, passes the batches that held nothing for it, and reads its partition exactly', async () => {
    const q = partitionOf(accounts[0] as string, spec)
    // Voters replicate whole here (partial replication between voters: partial-peer.spec.ts), so a voter receives every thunk.
    const g = await TestGroup.create(procedures, 6, 1, { partitions: [q] }, { partitions: { ...spec, partial: false } })
    const moves: Move[] = []
    for (let i = 0; i < 24; i++) moves.push({ from: accounts[i % 8] as string, to: accounts[(i * 5 + 3) % 8] as string, n: 1 })
    const mine = moves.filter(m => partitionOf(m.from, spec) === q || partitionOf(m.to, spec) === q).length
    expect(mine).toBeGreaterThan(0)
    expect(mine).toBeLessThan(moves.length)
    for (let i = 0; i < moves.length; i++) await call(g, `v${i % 6}`, `m${i}`, moves[i] as Move)
    await expectLocalBalances(g, q, moves)
    const c = g.peer('o0').status().counters
    // Each thunk it evaluates came once, none other did; a voter received every one.
    expect(c['thunks-received']).toBe(mine)
    expect(g.peer('v0').status().counters['thunks-received']).toBeGreaterThan(mine)
    expect(c['projection-refused'] ?? 0).toBe(0)
  })

  it('fills from a voter the batches whose spans were lost (projections and spans of a gap answer)', async () => {
    const q = partitionOf(accounts[0] as string, spec)
    const g = await TestGroup.create(procedures, 6, 1, { partitions: [q] }, { partitions: spec })
    let lost = 0
    g.filter = (_from, to, m) => {
      const drop = to === 'o0' && (m.t === 'write' || m.t === 'wm') && m.span !== undefined
      if (drop) lost++
      return !drop
    }
    const moves: Move[] = []
    for (let i = 0; i < 16; i++) moves.push({ from: accounts[i % 8] as string, to: accounts[(i * 5 + 3) % 8] as string, n: 2 })
    for (let i = 0; i < moves.length; i++) await call(g, `v${i % 6}`, `m${i}`, moves[i] as Move)
    expect(lost).toBeGreaterThan(0)
    await expectLocalBalances(g, q, moves)
    expect(g.peer('o0').status().counters['gap-req']).toBeGreaterThan(0)
  })

  it('gets a strict read answered at once, not at the voters\' next heartbeat: it asks them for their entries', async () => {
    const q = partitionOf(accounts[0] as string, spec)
    // Heartbeats 5 s apart: only the observer's asking brings the voters' entries past its read within the second allowed.
    const g = await TestGroup.create(procedures, 6, 1, { partitions: [q], idleHeartbeatMs: 5_000 }, { partitions: spec })
    const other = accounts.filter(a => partitionOf(a, spec) !== q)
    await call(g, 'v1', 'm0', { from: other[0] as string, to: other[1] as string, n: 3 })
    await g.steps(400)
    const local = accounts.filter(a => partitionOf(a, spec) === q)
    const out = await g.run(g.peer('o0').read(local), 200)
    expect(out.done && 'value' in out).toBe(true)
  })
})

describe('a gap answer in several messages', () => {
  it('gives each message the span up to its own last batch, so none covers a batch another one carries', () => {
    const b = (seq: number): Batch => ({ epoch: 1, coordinator: 'c', seq, thunks: [], projected: true })
    const out = spannedChunks([[b(3), b(5)], [b(9)], [b(12)]], { coordinator: 'c', epoch: 1, from: 1, to: 20 })
    expect(out.map(m => [m.batches.map(x => x.seq), m.span?.from, m.span?.to])).toEqual([[[3, 5], 1, 5], [[9], 6, 9], [[12], 10, 20]])
    // Nothing to carry: the span alone; no span: the chunks alone.
    expect(spannedChunks([], { coordinator: 'c', epoch: 1, from: 4, to: 8 })).toEqual([{ batches: [], span: { coordinator: 'c', epoch: 1, from: 4, to: 8 } }])
    expect(spannedChunks([[b(2)]], undefined)).toEqual([{ batches: [b(2)] }])
  })
})
