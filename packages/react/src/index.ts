export { TidelineProvider, useDatabase, type AnyDatabase } from './context.js'
export { useQuery, type QueryState, type QueryStatus, type Rows, type UseQueryOptions } from './use-query.js'
export { useCall, type CallState } from './use-call.js'
export { tidelineHooks, type ValueTypes, type ValueAt, type RowValue } from './typed.js'
