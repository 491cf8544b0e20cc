import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, Placement, checkPartitionSpec, inRange, partitionOf, partitionOfRange, scopeOf, thunkParts, type PartitionSpec } from '../src/index.js'

const spec: PartitionSpec = { count: 5, replicas: 3 }

describe('partitions of keys', () => {
  it('a key\'s scope is its first depth segments, or the whole key when it has fewer', () => {
    expect(scopeOf('board:a/card/1', spec)).toBe('board:a')
    expect(scopeOf('board:a', spec)).toBe('board:a')
    expect(scopeOf('', spec)).toBe('')
    expect(scopeOf('a/b/c/d', { ...spec, depth: 2 })).toBe('a/b')
    expect(scopeOf('a/b', { ...spec, depth: 2 })).toBe('a/b')
    expect(scopeOf('a::b::c', { ...spec, separator: '::', depth: 2 })).toBe('a::b')
  })

  it('keys of one scope share a partition, and assigned scopes go where they are pinned', () => {
    const pinned = { ...spec, assign: { 'board:a': 4, 'board:b': 0 } }
    expect(partitionOf('board:a/card/1', pinned)).toBe(4)
    expect(partitionOf('board:a/col/x', pinned)).toBe(4)
    expect(partitionOf('board:b/card/1', pinned)).toBe(0)
    fc.assert(fc.property(fc.string(), fc.string(), (scope, rest) => {
      const p = partitionOf(`${scope.replaceAll('/', '')}/${rest}`, spec)
      return p === partitionOf(scope.replaceAll('/', ''), spec) && p >= 0 && p < spec.count
    }))
  })

  it('every partition is used by some scope (the hash spreads)', () => {
    const seen = new Set<number>()
    for (let i = 0; i < 200; i++) seen.add(partitionOf(`t${i}/x`, spec))
    expect(seen.size).toBe(spec.count)
  })

  it('a range has a partition exactly when every key in it is of one scope', () => {
    expect(partitionOfRange({ start: 'board:a/card/', end: 'board:a/card0' }, spec)).toBe(partitionOf('board:a', spec))
    expect(partitionOfRange({ start: 'board:a/', end: 'board:a0' }, spec)).toBe(partitionOf('board:a', spec))
    expect(partitionOfRange({ start: 'board:a/' }, spec)).toBeUndefined()
    expect(partitionOfRange({ start: 'board:a', end: 'board:b' }, spec)).toBeUndefined()
    expect(partitionOfRange({ start: 'board:', end: 'board;' }, spec)).toBeUndefined()
    // Checked against the keys themselves: whatever a range with a partition holds is of that partition.
    const key = fc.stringMatching(/^[ab/]{0,6}$/)
    fc.assert(fc.property(key, key, fc.array(key, { maxLength: 30 }), (start, end, keys) => {
      const range = { start, end }
      const p = partitionOfRange(range, { count: 7 })
      if (p === undefined) return true
      return keys.filter(k => inRange(k, range)).every(k => partitionOf(k, { count: 7 }) === p)
    }), { numRuns: 2000 })
  })

  it('specs out of shape are refused with a named error', () => {
    expect(() => { checkPartitionSpec({ count: 0 }) }).toThrow(InvalidArgumentError)
    expect(() => { checkPartitionSpec({ count: 2, replicas: 0 }) }).toThrow(/replicas/)
    expect(() => { checkPartitionSpec({ count: 2, separator: '' }) }).toThrow(/separator/)
    expect(() => { checkPartitionSpec({ count: 2, assign: { a: 2 } }) }).toThrow(/assign/)
    checkPartitionSpec({ count: 2, assign: { a: 1 } })
  })
})

describe('placement', () => {
  it('deals the voters into replica sets of at least `replicas`, each partition on one whole set', () => {
    const seven = new Placement({ count: 5, replicas: 3 }, ['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6'])
    expect(seven.sets).toEqual([['v0', 'v2', 'v4', 'v6'], ['v1', 'v3', 'v5']])
    expect(seven.replicas).toEqual([seven.sets[0], seven.sets[1], seven.sets[0], seven.sets[1], seven.sets[0]])
    expect([...seven.holding('v3')]).toEqual([1, 3])
    expect(seven.holding('not-a-voter').size).toBe(0)
    // Fewer than two sets' worth: every voter holds every partition.
    const five = new Placement({ count: 4, replicas: 3 }, ['a', 'b', 'c', 'd', 'e'])
    expect(five.replicas.every(vs => vs.length === 5)).toBe(true)
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 12 }), (n, r, count) => {
      const voters = Array.from({ length: n }, (_, i) => `v${i}`)
      const placed = new Placement({ count, replicas: r }, voters)
      // Sets are disjoint, cover every voter, and each has at least min(r, n) voters; replicas of one partition hold the same partitions.
      const all = placed.sets.flat()
      return all.length === n && new Set(all).size === n && placed.sets.every(set => set.length >= Math.min(r, n)) &&
        placed.replicas.every(vs => vs.every(v => [...placed.holding(v)].join() === [...placed.holding(vs[0] as string)].join()))
    }))
  })
})

describe('what a thunk touches', () => {
  const s: PartitionSpec = { count: 4, assign: { a: 0, b: 1, c: 2 } }
  it('is evaluated where it writes, reads forwarded from elsewhere', () => {
    const move = thunkParts({ reads: ['a/x', 'b/y'], writes: ['a/x', 'b/y'] }, s)
    expect([...move.active].sort((x, y) => x - y)).toEqual([0, 1])
    expect(move.cross).toBe(true)
    const local = thunkParts({ reads: ['a/x'], writes: ['a/y'], ranges: [{ start: 'a/', end: 'a0' }] }, s)
    expect([...local.active]).toEqual([0])
    expect(local.cross).toBe(false)
    const readOnly = thunkParts({ reads: ['c/x'], writes: [] }, s)
    expect([...readOnly.active]).toEqual([2])
    expect(thunkParts({ reads: [], writes: [] }, s).active).toEqual(new Set([0]))
    const copy = thunkParts({ reads: ['c/x'], writes: ['a/y'] }, s)
    expect(copy.cross).toBe(true)
    expect(thunkParts({ reads: [], writes: [], ranges: [{ start: 'a' }] }, s).badRange).toBe(true)
  })
})
