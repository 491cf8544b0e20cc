import { useCallback, useState } from 'react'
import type { ArgsOf, CallOptions, CallResult, Database, LocalResult, ProcedureDef, ProcedureName, ResultOf } from '@tideline/db'
import { useDatabase } from './context.js'
import { pendingCalls } from './pending.js'

/** The state of a procedure's calls from one component: the last one's outcome, and how many are in flight. */
export type CallState<R> =
  | { readonly status: 'idle', readonly inFlight: number }
  | { readonly status: 'pending', readonly inFlight: number, readonly local?: LocalResult<R> }
  | { readonly status: 'committed', readonly inFlight: number, readonly result: CallResult<R> & { readonly status: 'committed' } }
  | { readonly status: 'aborted', readonly inFlight: number, readonly result: CallResult<R> & { readonly status: 'aborted' } }
  | { readonly status: 'failed', readonly inFlight: number, readonly error: Error }

/**
 * A function that calls procedure `name` (resolving with its final result,
 * as `db.call` does), and the state of its calls. Calls are optimistic
 * unless `optimistic: false` is passed: the procedure runs on this tab's
 * replica at once, every `useQuery` shows its writes (their keys listed in
 * `speculative`) until the final result, and the state carries the local
 * result meanwhile. While a call is in flight every `useQuery` whose keys it
 * declares it may write shows `pending`.
 */
export function useCall<P extends Record<string, ProcedureDef<any, any>> = any, K extends ProcedureName<P> = ProcedureName<P>> (name: K, options: { readonly db?: Database<P> } = {}): [(args: ArgsOf<P, K>, options?: CallOptions) => Promise<CallResult<ResultOf<P, K>>>, CallState<ResultOf<P, K>>] {
  const database = useDatabase<Database<P>>(options.db)
  const [state, setState] = useState<CallState<ResultOf<P, K>>>({ status: 'idle', inFlight: 0 })
  const call = useCallback(async (args: ArgsOf<P, K>, options?: CallOptions): Promise<CallResult<ResultOf<P, K>>> => {
    let writes: readonly string[] = []
    try {
      writes = database.keysOf(name, args).writes
    } catch {
      // The call itself fails with the same error below.
    }
    const done = pendingCalls(database).add(writes)
    setState(s => ({ status: 'pending', inFlight: s.inFlight + 1 }))
    try {
      const call = database.call(name, args, { optimistic: true, ...options })
      void call.local.then(local => { if (local !== undefined) setState(s => (s.status === 'pending' ? { ...s, local } : s)) })
      const result = await call
      setState(s => (result.status === 'committed'
        ? { status: 'committed', inFlight: s.inFlight - 1, result }
        : { status: 'aborted', inFlight: s.inFlight - 1, result }))
      return result
    } catch (err) {
      setState(s => ({ status: 'failed', inFlight: s.inFlight - 1, error: err as Error }))
      throw err
    } finally {
      done()
    }
  }, [database, name])
  return [call, state]
}
