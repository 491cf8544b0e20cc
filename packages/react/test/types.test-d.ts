// Compile-time tests (checked by `pnpm typecheck`): every @ts-expect-error
// below must be an error, or tsc fails with "unused @ts-expect-error".
import { defineProcedures, type Value } from '@tideline/db'
import { tidelineHooks, type RowValue, type ValueAt } from '../src/index.js'

interface Todo { readonly text: string, readonly done: boolean }
const procedures = defineProcedures({
  add: {
    keys: (a: { id: string, text: string }) => ({ reads: [], writes: [`todo/${a.id}`] }),
    run (tx, a) { tx.put(`todo/${a.id}`, { text: a.text, done: false }); return a.id.length }
  }
})
type Values = { 'todo/': Todo, 'acct/': number }

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const is = <T extends true>(_x?: T): void => {}

is<Equal<ValueAt<Values, 'todo/7'>, Todo>>()
is<Equal<ValueAt<Values, 'acct/a'>, number>>()
is<Equal<ValueAt<Values, 'other'>, Value>>()
is<Equal<RowValue<Values, { prefix: 'todo/' }>, Todo>>()
is<Equal<RowValue<Values, { prefix: 'todo/board-1/' }>, Todo>>()
is<Equal<RowValue<Values, { prefix: 'to' }>, Value>>()
is<Equal<RowValue<Values, readonly ['acct/a', 'todo/1']>, number | Todo>>()
is<Equal<RowValue<Values, { start: 'acct/', end: 'acct0' }>, Value>>()

export function Component (): void {
  const { useQuery, useCall } = tidelineHooks<typeof procedures, Values>()
  const [rows] = useQuery({ prefix: 'todo/' })
  const text: string | undefined = rows?.[0]?.[1].text
  // @ts-expect-error a Todo has no `title`
  void rows?.[0]?.[1].title
  const [balances] = useQuery(['acct/a', 'acct/b'])
  const n: number | undefined = balances?.[0]?.[1]
  const [add, state] = useCall('add')
  void add({ id: '1', text: 'x' }).then(r => { if (r.status === 'committed') { const len: number = r.value; void len } })
  // @ts-expect-error `text` is missing
  void add({ id: '1' })
  // @ts-expect-error no procedure named `ad`
  useCall('ad')
  void text; void n; void state
}
