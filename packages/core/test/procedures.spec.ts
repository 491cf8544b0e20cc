import { describe, expect, it } from 'vitest'
import { createRegistry, evaluate, makeTimestamp, peerTag, resolveProcedure, type Thunk, type Tx, type Value } from '../src/index.js'

const ts = makeTimestamp(1_700_000_000_000, peerTag('v0'), 3)

function thunk (procedure: string, args: Value, reads: string[], writes: string[], hash: string): Thunk {
  return { ts, epoch: 0, coordinator: 'v0', seq: 1, index: 0, procedure, hash, args, reads, writes, clientTxnId: 'c1', firstAt: 1_700_000_000_000 }
}

const procs = {
  inc: {
    keys: (a: { k: string }) => ({ reads: [a.k], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { const v = ((tx.get(a.k) as number | undefined) ?? 0) + 1; tx.put(a.k, v); return v }
  },
  sneaky: {
    keys: () => ({ reads: ['a'], writes: ['a'] }),
    run: (tx: Tx) => { tx.get('b'); return null }
  },
  sneakyWrite: {
    keys: () => ({ reads: ['a'], writes: ['a'] }),
    run: (tx: Tx) => { tx.put('b', 1); return null }
  },
  boom: {
    keys: () => ({ reads: [], writes: [] }),
    run: () => { throw new RangeError('kaput') }
  },
  refuse: {
    keys: () => ({ reads: ['a'], writes: ['a'] }),
    run: (tx: Tx) => { tx.put('a', 1); return tx.abort('no thanks') }
  },
  huge: {
    keys: () => ({ reads: [], writes: ['a'] }),
    run: (tx: Tx) => { tx.put('a', 'x'.repeat(2000)); return null }
  },
  clocked: {
    keys: () => ({ reads: [], writes: [] }),
    run: (tx: Tx) => [tx.now(), tx.random(), tx.random()]
  },
  wallClock: {
    keys: () => ({ reads: [], writes: [] }),
    run: () => Date.now()
  },
  dice: {
    keys: () => ({ reads: [], writes: [] }),
    run: () => Math.random()
  },
  stopwatch: {
    keys: () => ({ reads: [], writes: [] }),
    run: () => performance.now()
  },
  badValue: {
    keys: () => ({ reads: [], writes: ['a'] }),
    run: (tx: Tx) => { tx.put('a', (() => 1) as unknown as Value); return null }
  }
}

describe('procedures', () => {
  const registry = createRegistry(procs)
  const h = (name: string): string => registry.procedures.get(name)?.hash ?? ''
  const run = (name: string, args: Value, reads: string[], writes: string[], store: Record<string, Value> = {}) =>
    evaluate(registry, thunk(name, args, reads, writes, h(name)), k => store[k], { maxValueBytes: 1000 })

  it('hashes follow the code: same code same hash, changed code another hash', () => {
    expect(createRegistry(procs).hash).toBe(registry.hash)
    const changed = createRegistry({ ...procs, inc: { ...procs.inc, run: (tx: Tx, a: { k: string }) => { tx.put(a.k, 2); return 2 } } })
    expect(changed.procedures.get('inc')?.hash).not.toBe(h('inc'))
    expect(changed.hash).not.toBe(registry.hash)
    expect(createRegistry(procs, { salt: 'v2' }).hash).not.toBe(registry.hash)
  })

  it('refuses unknown names and mismatched hashes with named errors', () => {
    expect(() => resolveProcedure(registry, 'nope', 'x')).toThrow(expect.objectContaining({ name: 'UnknownProcedureError' }))
    expect(() => resolveProcedure(registry, 'inc', 'deadbeef')).toThrow(expect.objectContaining({ name: 'ProcedureHashMismatchError' }))
    expect(resolveProcedure(registry, 'inc', h('inc')).name).toBe('inc')
  })

  it('commits with the writes of the body', () => {
    const ev = run('inc', { k: 'a' }, ['a'], ['a'], { a: 41 })
    expect(ev.outcome).toEqual({ status: 'committed', value: 42 })
    expect(ev.writes).toEqual([['a', 42]])
  })

  it('undeclared reads and writes, throws, aborts, oversized and invalid values are deterministic aborts', () => {
    const cases: Array<[string, string]> = [
      ['sneaky', 'UndeclaredKeyError'], ['sneakyWrite', 'UndeclaredKeyError'], ['boom', 'ProcedureError'],
      ['refuse', 'TransactionAbort'], ['huge', 'ValueTooLargeError'], ['badValue', 'InvalidValueError']
    ]
    for (const [name, error] of cases) {
      const ev = run(name, null, ['a'], ['a'])
      expect(ev.outcome.status).toBe('aborted')
      expect(ev.outcome.status === 'aborted' && ev.outcome.error).toBe(error)
      expect(ev.writes).toEqual([])
      // the same input gives the same outcome every time
      expect(run(name, null, ['a'], ['a'])).toEqual(ev)
    }
  })

  it('a thunk whose hash differs from the registry aborts with ProcedureHashMismatchError', () => {
    const ev = evaluate(registry, thunk('inc', { k: 'a' }, ['a'], ['a'], 'other'), () => undefined)
    expect(ev.outcome).toMatchObject({ status: 'aborted', error: 'ProcedureHashMismatchError' })
  })

  it('Date.now, Math.random and performance.now are unavailable inside run, and restored after', () => {
    for (const name of ['wallClock', 'dice', 'stopwatch']) {
      expect(run(name, null, [], []).outcome).toMatchObject({ status: 'aborted', error: 'NondeterminismError' })
    }
    expect(typeof Date.now()).toBe('number')
    expect(Math.random()).toBeLessThan(1)
    expect(performance.now()).toBeGreaterThan(0)
    expect(Object.hasOwn(performance, 'now')).toBe(false)
  })

  it('tx.now and tx.random depend on the timestamp only', () => {
    const a = run('clocked', null, [], [])
    const b = run('clocked', null, [], [])
    expect(a).toEqual(b)
    const v = (a.outcome as unknown as { value: number[] }).value
    expect(v[0]).toBe(1_700_000_000_000)
    expect(v[1]).not.toBe(v[2])
    const other = evaluate(registry, { ...thunk('clocked', null, [], [], h('clocked')), ts: makeTimestamp(1_700_000_000_000, peerTag('v1'), 3) }, () => undefined)
    expect((other.outcome as unknown as { value: number[] }).value[1]).not.toBe(v[1])
  })

  it('a procedure cannot change the snapshot it read', () => {
    const store: Record<string, Value> = { a: { n: 1 } }
    const mutate = createRegistry({
      m: { keys: () => ({ reads: ['a'], writes: [] }), run: (tx: Tx) => { (tx.get('a') as { n: number }).n = 99; return null } }
    })
    evaluate(mutate, thunk('m', null, ['a'], [], mutate.procedures.get('m')?.hash ?? ''), k => store[k])
    expect(store.a).toEqual({ n: 1 })
  })
})
