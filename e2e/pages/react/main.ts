import { createElement as h, useEffect, useLayoutEffect, type ReactNode } from 'react'
import { createRoot } from 'react-dom/client'
import { openDatabase, type Database } from '@tideline/db'
import { TidelineProvider, useCall, useQuery, type QueryState } from '@tideline/react'
import { procedures, type Todo } from './procedures.js'

// The page side of the React tests: a list rendered with useQuery over the
// `todo/` prefix, calls made with useCall, and every render recorded (the
// rows it showed, their timestamp, status and pending) for the test to compare.

type Db = Database<typeof procedures>
type Action = 'add' | 'move' | 'remove'
interface Render { readonly ts: string | undefined, readonly rows: string[], readonly status: QueryState['status'], readonly pending: boolean, readonly speculative: readonly string[] }

interface Acted { readonly status: string, readonly reason?: string, readonly ts: string }
const state: { db?: Db, renders: Render[], act?: (action: Action, args: never) => Promise<Acted> } = { renders: [] }
/** Settles once the list component is mounted and its calls can be made. */
let mounted: () => void = () => {}
const ready = new Promise<void>(resolve => { mounted = resolve })

function List (): ReactNode {
  const [rows, q] = useQuery<Todo>({ prefix: 'todo/' })
  const [add, added] = useCall('add', { db: state.db as Db })
  const [move] = useCall('move', { db: state.db as Db })
  const [remove] = useCall('remove', { db: state.db as Db })
  useEffect(() => {
    state.act = async (action, args) => {
      const call = action === 'add' ? add : action === 'move' ? move : remove
      const r = await (call as (a: never) => Promise<{ status: string, reason?: string, ts: string }>)(args)
      return r.status === 'aborted' ? { status: r.status, reason: r.reason ?? '', ts: r.ts } : { status: r.status, ts: r.ts }
    }
    mounted()
  }, [add, move, remove])
  const shown = (rows ?? []).map(([k, v]) => `${k}=${v.text}`)
  useLayoutEffect(() => {
    state.renders.push({ ts: q.ts, rows: shown, status: q.status, pending: q.pending, speculative: q.speculative })
  })
  return h('div', null,
    h('p', { id: 'status', 'data-status': q.status, 'data-pending': String(q.pending) }, `${q.status}${q.pending ? ' (pending)' : ''}`),
    h('p', { id: 'add-state' }, added.status === 'aborted' ? `not added: ${added.result.reason}` : added.status),
    h('ul', { id: 'todos' }, (rows ?? []).map(([k, v]) => h('li', { key: k, 'data-key': k, 'data-speculative': String(q.speculative.includes(k)) }, v.text))))
}

const harness = {
  async open (o: { peers: string[], invite: string, creator: string }): Promise<string> {
    state.db = await openDatabase({
      name: 'todos',
      procedures,
      peers: o.peers,
      invite: o.invite,
      creator: o.creator,
      worker: () => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }),
      timeoutMs: 30_000
    })
    createRoot(document.getElementById('root') as HTMLElement).render(h(TidelineProvider, { db: state.db }, h(List)))
    await ready
    return state.db.id
  },
  async act (action: Action, args: Record<string, string>): Promise<Acted> {
    if (state.act === undefined) throw new Error('not rendered yet')
    return await state.act(action, args as never)
  },
  renders: (): Render[] => state.renders,
  /**
   * At wall-clock `at`, adds `id` with `text` through useCall (optimistic) and
   * times, from the call, when the item first shows with this text (a
   * MutationObserver on the list) and when the final result arrives.
   */
  async race (id: string, text: string, at: number): Promise<Acted & { shownMs: number | undefined, finalMs: number }> {
    await new Promise(resolve => { setTimeout(resolve, Math.max(0, at - Date.now())) })
    const list = document.getElementById('todos') as HTMLElement
    const t0 = performance.now()
    let shownMs: number | undefined
    const observer = new MutationObserver(() => {
      if (shownMs === undefined && list.querySelector(`li[data-key="todo/${id}"]`)?.textContent === text) shownMs = performance.now() - t0
    })
    observer.observe(list, { childList: true, subtree: true, characterData: true })
    const r = await harness.act('add', { id, text, by: text })
    const finalMs = performance.now() - t0
    observer.disconnect()
    return { ...r, shownMs, finalMs }
  },
  /**
   * `n` optimistic adds one after another, each timed from the call: until
   * the item is in the DOM (React committed it), until the next animation
   * frame after that (painted), and until the final result.
   */
  async optimisticLatency (n: number, prefix: string): Promise<{ shown: number[], painted: number[], final: number[] }> {
    const list = document.getElementById('todos') as HTMLElement
    const out = { shown: [] as number[], painted: [] as number[], final: [] as number[] }
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${i}`
      const t0 = performance.now()
      let painted: Promise<number> | undefined
      const observer = new MutationObserver(() => {
        if (painted !== undefined || list.querySelector(`li[data-key="todo/${id}"]`) === null) return
        out.shown.push(performance.now() - t0)
        painted = new Promise(resolve => { requestAnimationFrame(() => { resolve(performance.now() - t0) }) })
      })
      observer.observe(list, { childList: true, subtree: true })
      await harness.act('add', { id, text: id, by: 'bench' })
      out.final.push(performance.now() - t0)
      observer.disconnect()
      if (painted !== undefined) out.painted.push(await painted)
    }
    return out
  },
  /** The list as a strict read sees it, and a procedure that counts it with a declared range. */
  async strict (): Promise<{ rows: string[], counted: number }> {
    const db = state.db as Db
    const r = await db.read({ prefix: 'todo/' })
    const c = await db.call('count', {})
    return { rows: (r.entries ?? []).map(([k, v]) => `${k}=${(v as unknown as Todo).text}`), counted: c.status === 'committed' ? c.value : -1 }
  },
  digest: () => { const s = (state.db as Db).status(); return `${s.evaluated}:${s.digest}` }
}

declare global {
  interface Window { reactHarness: typeof harness }
}
window.reactHarness = harness
