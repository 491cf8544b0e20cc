import type { CallOptions, CallResult, Database, ProcedureDef, ProcedureName, Query, ArgsOf, ResultOf, Value } from '@tideline/db'
import { useCall, type CallState } from './use-call.js'
import { useQuery, type QueryState, type Rows, type UseQueryOptions } from './use-query.js'

/**
 * The types an app says its values have, by key prefix:
 * `{ 'todo/': Todo, 'acct/': number }`. Keys under no prefix are `Value`.
 */
export type ValueTypes = Record<string, unknown>

/** The type a key's value has under the app's ValueTypes: its prefix's (a union where prefixes nest), else Value. */
export type ValueAt<V extends ValueTypes, K extends string> =
  [{ [P in keyof V & string]: K extends `${P}${string}` ? V[P] : never }[keyof V & string]] extends [never]
    ? Value
    : { [P in keyof V & string]: K extends `${P}${string}` ? V[P] : never }[keyof V & string]

/**
 * The type of a query's values: a prefix's or a range start's (every key in
 * the range starts with it only when it is a declared prefix: otherwise
 * Value), or the union over a list's keys.
 */
export type RowValue<V extends ValueTypes, Q> =
  Q extends { readonly prefix: infer P extends string } ? ValueAt<V, P>
    : Q extends { readonly start: infer S extends string, readonly end?: undefined } ? ValueAt<V, S>
      : Q extends readonly [] ? never
        : Q extends ReadonlyArray<infer K extends string> ? ValueAt<V, K>
          : Value

/**
 * Hooks typed by the app's procedures and value types:
 * `const { useQuery, useCall } = tidelineHooks<typeof procedures, { 'todo/': Todo }>()`;
 * then `useQuery({ prefix: 'todo/' })` gives rows of `Todo`, and `useCall('add')` takes and
 * returns what `add` does.
 */
export function tidelineHooks<P extends Record<string, ProcedureDef<any, any>>, V extends ValueTypes = Record<never, never>> (): {
  useQuery: <const Q extends Query>(query: Q, options?: UseQueryOptions) => [Rows<RowValue<V, Q>> | undefined, QueryState]
  useCall: <K extends ProcedureName<P>>(name: K, options?: { readonly db?: Database<P> }) => [(args: ArgsOf<P, K>, options?: CallOptions) => Promise<CallResult<ResultOf<P, K>>>, CallState<ResultOf<P, K>>]
} {
  return {
    useQuery: (query, options) => useQuery(query, options),
    useCall: (name, options) => useCall<P, typeof name>(name, options)
  }
}
