import { describe, expect, it } from 'vitest'
import { Placement, partitionOf, thunkParts, type PartitionSpec, type TxnResult } from '../src/index.js'
import { TestGroup } from './harness.js'
import { accounts, call, move, total, type Move } from './moves.js'

// Partial replication between voters (partial.ts): six voters in two replica
// sets, accounts over four partitions. A voter receives only the thunks that
// touch its set's partitions, transfers within and across sets commit with
// the results of running them one after another, and an epoch change that
// votes a voter out keeps every batch.

const spec: PartitionSpec = { count: 4, replicas: 3, depth: 2, partial: true }
const voters = ['v0', 'v1', 'v2', 'v3', 'v4', 'v5']
const placement = new Placement(spec, voters)
const procedures = { move }

/** What running `moves` one after another returns for each. */
function expected (moves: readonly Move[]): Array<number | string> {
  const model = new Map(accounts.map(a => [a, 100]))
  return moves.map(m => {
    const from = model.get(m.from) as number
    if (from < m.n) return 'insufficient funds'
    model.set(m.from, from - m.n)
    model.set(m.to, (model.get(m.to) as number) + m.n)
    return from - m.n
  })
}

const setOfKey = (k: string): number => placement.setOfPartition(partitionOf(k, spec))

describe('partial replication between voters', () => {
  it('a voter receives only the thunks that touch its set; transfers within and across sets give the serial results everywhere', async () => {
    const g = await TestGroup.create(procedures, 6, 0, {}, { partitions: spec })
    expect(new Set(accounts.map(setOfKey)).size).toBe(2)
    // Every write on the wire to a voter carries only thunks that touch its set (or its own batches: a coordinator sends none to itself).
    let stray = 0
    let writes = 0
    g.filter = (_from, to, m) => {
      if (m.t !== 'write') return true
      const j = placement.setOf(to)
      for (const b of m.batches) {
        for (const t of b.thunks) {
          writes++
          const parts = thunkParts(t, spec)
          if (j !== undefined && ![...parts.reads, ...parts.active].some(q => placement.setOfPartition(q) === j)) stray++
        }
      }
      return true
    }
    const moves: Move[] = []
    for (let i = 0; i < 30; i++) moves.push({ from: accounts[i % 8] as string, to: accounts[(i * 3 + 1 + (i % 2) * 2) % 8] as string, n: 1 + (i % 5) })
    moves.push({ from: accounts[0] as string, to: accounts[1] as string, n: 500 })
    const results: TxnResult[] = []
    for (let i = 0; i < moves.length; i++) results.push(await call(g, `v${i % 6}`, `m${i}`, moves[i] as Move))
    expect(results.map(r => r.status === 'committed' ? r.value : r.reason)).toEqual(expected(moves))
    for (const via of ['v0', 'v1', 'v5']) expect(await total(g, via)).toBe(800)
    expect(writes).toBeGreaterThan(0)
    expect(stray).toBe(0)
    // A voter of set j received at most the calls that touch j and were coordinated by another voter; fewer than all of them.
    for (const v of voters) {
      const j = placement.setOf(v)
      const touching = moves.filter((m, i) => `v${i % 6}` !== v && (setOfKey(m.from) === j || setOfKey(m.to) === j)).length
      const got = g.peer(v).status().counters['thunks-received'] ?? 0
      expect(got).toBeLessThanOrEqual(touching)
      expect(got).toBeLessThan(moves.length - moves.length / 6)
    }
  })

  it('votes a dead voter out with every batch kept, and goes on committing with the serial results', async () => {
    const g = await TestGroup.create(procedures, 6, 0, { suspectMs: 300, suspectMinMs: 100, proposeTimeoutMs: 100 }, { partitions: spec })
    const moves: Move[] = []
    for (let i = 0; i < 24; i++) moves.push({ from: accounts[(i * 5) % 8] as string, to: accounts[(i * 3 + 1) % 8] as string, n: 1 + (i % 3) })
    const results: TxnResult[] = []
    const live = ['v0', 'v2', 'v3', 'v4', 'v5']
    for (let i = 0; i < 8; i++) results.push(await call(g, `v${i % 6}`, `m${i}`, moves[i] as Move))
    g.crash('v1')
    for (let i = 8; i < moves.length; i++) results.push(await call(g, live[i % live.length] as string, `m${i}`, moves[i] as Move))
    expect(results.map(r => r.status === 'committed' ? r.value : r.reason)).toEqual(expected(moves))
    await g.steps(400)
    expect(g.peer('v0').status().voters).not.toContain('v1')
    for (const via of ['v0', 'v3', 'v4']) expect(await total(g, via)).toBe(800)
  })

  it('a client\'s call of one set\'s keys that reaches a voter of the other set is handed to a voter of its set, which coordinates it', async () => {
    // The observer's calls reach its home voter as a client's do (a remote caller); the calls below each touch one set.
    const g = await TestGroup.create(procedures, 6, 1, {}, { partitions: spec })
    const coordinatorOf = new Map<string, string>()
    g.filter = (_from, _to, m) => {
      if (m.t === 'write') for (const b of m.batches) for (const t of b.thunks) coordinatorOf.set(t.clientTxnId, b.coordinator)
      return true
    }
    const bySet = [0, 1].map(j => accounts.filter(a => setOfKey(a) === j))
    const moves: Move[] = []
    for (let i = 0; i < 12; i++) {
      const of = bySet[i % 2] as string[]
      moves.push({ from: of[i % of.length] as string, to: of[(i + 1) % of.length] as string, n: 1 })
    }
    const results: TxnResult[] = []
    for (let i = 0; i < moves.length; i++) results.push(await call(g, 'o0', `r${i}`, moves[i] as Move))
    expect(results.map(r => r.status === 'committed' ? r.value : r.reason)).toEqual(expected(moves))
    moves.forEach((m, i) => expect(placement.setOf(coordinatorOf.get(`r${i}`) as string)).toBe(setOfKey(m.from)))
    const routed = voters.reduce((n, v) => n + (g.peer(v).status().counters['routed-to-set'] ?? 0), 0)
    expect(routed).toBe(6)
  })
})

