import { describe, expect, it } from 'vitest'
import type { Batch, Message, Timestamp } from '../src/index.js'
import { TestGroup } from './harness.js'
import { accounts, call, move, total } from './moves.js'

// The dissemination tree (tree.ts, docs/design/tabs.md §2): observers hang
// under the root voter or under each other; voters send a placed observer
// nothing unless they are its parent; parents pass batches and signed
// entries on; forged ones stop at the first receiver, and a subtree whose
// parent forges or goes silent re-attaches.

const TREE = { keys: true, tree: { join: true, slots: 2, rootSlots: 1 } } as const

/** Each observer's chain of parents up to a voter; throws on a cycle or a missing place. */
function chains (g: TestGroup, observers: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const o of observers) {
    const chain: string[] = []
    let at: string | undefined = o
    while (at !== undefined && at.startsWith('o')) {
      if (chain.includes(at)) throw new Error(`cycle through ${at}: ${chain.join(' > ')}`)
      chain.push(at)
      at = g.peer(at).status().tree.parent
    }
    if (at === undefined) throw new Error(`${o} has no place: ${chain.join(' > ')}`)
    chain.push(at)
    out.set(o, chain)
  }
  return out
}

const observers = Array.from({ length: 7 }, (_, i) => `o${i}`)

async function placed (g: TestGroup, who: readonly string[] = observers): Promise<void> {
  for (let i = 0; i < 400; i++) {
    await g.step()
    if (who.every(o => g.peer(o).status().tree.parent !== undefined)) return
  }
  throw new Error(`not placed: ${who.filter(o => g.peer(o).status().tree.parent === undefined).join(', ')}`)
}

async function agree (g: TestGroup, who: readonly string[], ref = 'v0'): Promise<void> {
  const target = (): string => g.peer(ref).status().digest
  for (let i = 0; i < 600; i++) {
    await g.step()
    if (who.every(o => g.peer(o).status().digest === target())) return
  }
  expect(who.map(o => [o, g.peer(o).status().evaluated])).toEqual(who.map(o => [o, g.peer(ref).status().evaluated]))
}

describe('the dissemination tree', () => {
  it('observers find places under the root and each other; voters send placed observers nothing but the root its children; every observer evaluates what the voters did', async () => {
    const g = await TestGroup.create({ move }, 3, 7, TREE)
    await placed(g)
    const tree = chains(g, observers)
    // One slot at the root: every chain ends at the same voter, through the same child; two slots at each observer.
    const root = new Set([...tree.values()].map(c => c.at(-1)))
    expect(root.size).toBe(1)
    const rootId = [...root][0] as string
    expect(g.peer(rootId).status().tree.children).toHaveLength(1)
    for (const o of observers) expect(g.peer(o).status().tree.children.length).toBeLessThanOrEqual(2)
    expect(Math.max(...[...tree.values()].map(c => c.length))).toBeGreaterThanOrEqual(4)
    // Under load, what voters send observers: writes and entries to the root's one child only.
    const fromVoters = new Map<string, Set<string>>()
    g.filter = (from, to, m) => {
      if (from.startsWith('v') && to.startsWith('o') && (m.t === 'write' || m.t === 'wm' || m.t === 'tw' || m.t === 'dur' || m.t === 'ck')) {
        const seen = fromVoters.get(m.t) ?? new Set<string>()
        seen.add(`${from}>${to}`)
        fromVoters.set(m.t, seen)
      }
      return true
    }
    for (let i = 0; i < 12; i++) expect((await call(g, `v${i % 3}`, `m${i}`, { from: accounts[i % 8] as string, to: accounts[(i + 3) % 8] as string, n: 1 })).status).toBe('committed')
    await agree(g, observers)
    const child = g.peer(rootId).status().tree.children[0] as string
    expect([...fromVoters.get('write') ?? []].sort()).toEqual([`${rootId}>${child}`])
    expect([...fromVoters.get('tw') ?? []]).toEqual([`${rootId}>${child}`])
    expect(fromVoters.get('wm')).toBeUndefined()
    // Deeper observers took batches passed on by their parents, each checked once.
    const deep = observers.filter(o => (tree.get(o)?.length ?? 0) > 2)
    expect(deep.length).toBeGreaterThan(0)
    for (const o of deep) {
      const c = g.peer(o).status().counters
      expect(c['forwarded-checked'] ?? 0).toBeGreaterThan(0)
      expect(c['tw-checked'] ?? 0).toBeGreaterThan(0)
      expect(c['forged-batch'] ?? 0).toBe(0)
    }
    // A strict read at the deepest observer sees every transfer (its watermark comes down the tree).
    const deepest = [...tree.entries()].sort((a, b) => b[1].length - a[1].length)[0]?.[0] as string
    expect(await total(g, deepest)).toBe(800)
  })

  it('a parent that forges is struck out by its children, which find other places; forged entries are refused; a crashed parent\'s subtree re-attaches', async () => {
    const g = await TestGroup.create({ move }, 3, 7, TREE)
    await placed(g)
    const tree = chains(g, observers)
    // A forging parent: an observer with children, below the root's child.
    const forger = observers.find(o => g.peer(o).status().tree.children.length > 0 && (tree.get(o)?.length ?? 0) > 2) as string
    expect(forger).toBeDefined()
    const victims = g.peer(forger).status().tree.children
    expect(victims.length).toBeGreaterThan(0)
    g.filter = (from, to, m) => {
      if (from !== forger || !victims.includes(to)) return true
      if (m.t === 'write' && m.batches.length > 0) {
        const forged = structuredClone(m.batches) as unknown as Array<{ thunks: Array<{ args: unknown }> }>
        for (const b of forged) for (const t of b.thunks) t.args = { from: 'acct/0', to: 'acct/1', n: 99 }
        g.peer(to).receive(from, { ...m, batches: forged as unknown as Batch[] })
        return false
      }
      if (m.t === 'tw') {
        // An entry raised far past what the voters promised, under the root's name.
        const raised = m.wm.map(e => ({ ...e, svw: 'f'.repeat(36) as Timestamp, count: e.count + 100 }))
        g.peer(to).receive(from, { ...m, wm: raised } satisfies Message)
        return false
      }
      return true
    }
    for (let i = 0; i < 6; i++) expect((await call(g, 'v1', `f${i}`, { from: 'acct/2', to: 'acct/3', n: 1 })).status).toBe('committed')
    await g.steps(100)
    for (const v of victims) {
      const c = g.peer(v).status().counters
      expect((c['forged-batch'] ?? 0) + (c['forged-entries'] ?? 0)).toBeGreaterThanOrEqual(3)
      expect(c['forged-entries'] ?? 0).toBeGreaterThan(0)
      expect(g.peer(v).status().tree.parent).not.toBe(forger)
      // No forged watermark took: the victim's never passed the voters'.
      expect(g.peer(v).status().watermark <= g.peer('v0').status().watermark).toBe(true)
    }
    await agree(g, observers)
    expect(await total(g, victims[0] as string)).toBe(800)
    // A parent that crashes: its children hear nothing, drop it, and find other places.
    g.filter = () => true
    await placed(g, observers.filter(o => o !== forger))
    const parent = observers.find(o => o !== forger && g.peer(o).status().tree.children.length > 0) as string
    const orphans = g.peer(parent).status().tree.children
    expect(orphans.length).toBeGreaterThan(0)
    g.crash(parent)
    const rest = observers.filter(o => o !== parent)
    for (let i = 0; i < 6; i++) expect((await call(g, 'v2', `c${i}`, { from: 'acct/4', to: 'acct/5', n: 1 })).status).toBe('committed')
    // Twice the failure detector's bound of silence, then a place elsewhere.
    await g.steps(1_200)
    for (const o of orphans) expect(g.peer(o).status().tree.parent).not.toBe(parent)
    await agree(g, rest)
  })

  it('an observer with no place is served by the root alone at first, and by every voter once it has had none for the failure detector\'s bound', async () => {
    // One slot at the root and none at observers: the second observer never finds a place.
    const g = await TestGroup.create({ move }, 3, 2, { keys: true, suspectMs: 1_000, tree: { join: true, slots: 0, rootSlots: 1 } })
    await placed(g, ['o0'])
    const root = g.peer('o0').status().tree.parent as string
    const senders = new Map<number, Set<string>>()
    g.filter = (from, to, m) => {
      if (to === 'o1' && from.startsWith('v') && m.t === 'write' && m.batches.length > 0) {
        const t = g.clock.t
        const seen = senders.get(t) ?? new Set<string>()
        seen.add(from)
        senders.set(t, seen)
      }
      return true
    }
    const start = g.clock.t
    for (let i = 0; i < 30; i++) {
      expect((await call(g, `v${i % 3}`, `u${i}`, { from: 'acct/0', to: 'acct/1', n: 1 })).status).toBe('committed')
      await g.steps(12)
    }
    expect(g.peer('o1').status().tree.parent).toBeUndefined()
    const early = new Set([...senders].filter(([t]) => t - start < 800).flatMap(([, s]) => [...s]))
    const late = new Set([...senders].filter(([t]) => t - start > 1_500).flatMap(([, s]) => [...s]))
    expect(g.clock.t - start).toBeGreaterThan(1_600)
    expect([...early]).toEqual([root])
    expect([...late].sort()).toEqual(['v0', 'v1', 'v2'])
    await agree(g, ['o0', 'o1'])
  })

  it('a parent that passes nothing new on, only replays of a tree watermark it took, is left and avoided; a replay is dropped unchecked', async () => {
    const g = await TestGroup.create({ move }, 3, 7, TREE)
    await placed(g)
    const tree = chains(g, observers)
    const holder = observers.find(o => g.peer(o).status().tree.children.length > 0 && (tree.get(o)?.length ?? 0) > 2) as string
    expect(holder).toBeDefined()
    const victims = g.peer(holder).status().tree.children
    expect(victims.length).toBeGreaterThan(0)
    // From now on the holder withholds batches and passes each child only the first tree watermark it sends it, again and again.
    const first = new Map<string, Message>()
    g.filter = (from, to, m) => {
      if (from !== holder || !victims.includes(to)) return true
      if (m.t === 'tw') {
        const kept = first.get(to) ?? m
        first.set(to, kept)
        g.peer(to).receive(from, kept)
      }
      return m.t !== 'tw' && m.t !== 'write'
    }
    for (let i = 0; i < 4; i++) expect((await call(g, 'v0', `h${i}`, { from: 'acct/6', to: 'acct/7', n: 1 })).status).toBe('committed')
    await g.steps(1_000)
    for (const v of victims) {
      expect(g.peer(v).status().counters['tw-stale'] ?? 0).toBeGreaterThan(0)
      expect(g.peer(v).status().tree.parent).not.toBe(holder)
    }
    // They find places elsewhere and evaluate everything; none goes back under the holder.
    await placed(g, victims)
    for (const v of victims) expect(g.peer(v).status().tree.parent).not.toBe(holder)
    await agree(g, observers)
  })

  it('when the root voter dies, the next root adopts its child, and the whole tree keeps its shape and goes on', async () => {
    const g = await TestGroup.create({ move }, 3, 7, TREE)
    await placed(g)
    const before = new Map(observers.map(o => [o, g.peer(o).status().tree.parent as string]))
    const root = [...before.values()].find(p => p.startsWith('v')) as string
    const child = [...before].find(([, p]) => p === root)?.[0] as string
    g.crash(root)
    const live = ['v0', 'v1', 'v2'].filter(v => v !== root)
    for (let i = 0; i < 6; i++) expect((await call(g, live[i % 2] as string, `r${i}`, { from: 'acct/2', to: 'acct/5', n: 1 })).status).toBe('committed')
    for (let i = 0; i < 1_200 && g.peer(child).status().tree.parent === root; i++) await g.step()
    // The child moved to a live voter with its subtree; every other observer kept its parent.
    expect(live).toContain(g.peer(child).status().tree.parent)
    expect(g.peer(child).status().counters['tree-moved']).toBe(1)
    const others = observers.filter(o => o !== child)
    expect(others.map(o => g.peer(o).status().tree.parent)).toEqual(others.map(o => before.get(o)))
    await agree(g, observers, live[0])
  })
})
