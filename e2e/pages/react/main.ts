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
interface Render { readonly ts: string | undefined, readonly rows: string[], readonly status: QueryState['status'], readonly pending: boolean }

interface Acted { readonly status: string, readonly reason?: string, readonly ts: string }
const state: { db?: Db, renders: Render[], act?: (action: Action, args: never) => Promise<Acted> } = { renders: [] }

function List (): ReactNode {
  const [rows, q] = useQuery<Todo>({ prefix: 'todo/' })
  const [add] = useCall('add', { db: state.db as Db })
  const [move] = useCall('move', { db: state.db as Db })
  const [remove] = useCall('remove', { db: state.db as Db })
  useEffect(() => {
    state.act = async (action, args) => {
      const call = action === 'add' ? add : action === 'move' ? move : remove
      const r = await (call as (a: never) => Promise<{ status: string, reason?: string, ts: string }>)(args)
      return r.status === 'aborted' ? { status: r.status, reason: r.reason ?? '', ts: r.ts } : { status: r.status, ts: r.ts }
    }
  }, [add, move, remove])
  const shown = (rows ?? []).map(([k, v]) => `${k}=${v.text}`)
  useLayoutEffect(() => {
    state.renders.push({ ts: q.ts, rows: shown, status: q.status, pending: q.pending })
  })
  return h('div', null,
    h('p', { id: 'status', 'data-status': q.status, 'data-pending': String(q.pending) }, `${q.status}${q.pending ? ' (pending)' : ''}`),
    h('ul', { id: 'todos' }, (rows ?? []).map(([k, v]) => h('li', { key: k, 'data-key': k }, v.text))))
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
    return state.db.id
  },
  async act (action: Action, args: Record<string, string>): Promise<Acted> {
    if (state.act === undefined) throw new Error('not rendered yet')
    return await state.act(action, args as never)
  },
  renders: (): Render[] => state.renders,
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
