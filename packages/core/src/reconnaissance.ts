import { ReconnaissanceFailedError } from './errors.js'
import type { ReadResult, SubmitRequest, TxnResult } from './types.js'
import type { Value } from './value.js'

/** What a reconnaissance transaction needs from a database handle. */
export interface ReconnaissanceTarget {
  read(keys: readonly string[], options?: { consistency?: 'strict' | 'snapshot', signal?: AbortSignal }): Promise<ReadResult>
  submit(req: SubmitRequest, options?: { signal?: AbortSignal }): Promise<TxnResult>
}

export interface ReconnaissanceInit {
  /** Keys whose values decide the transaction's key sets. */
  readonly keys: readonly string[]
  /**
   * Builds the static-set transaction from what was read. The procedure must
   * re-check the values it is given (they ride in its arguments) and abort
   * with `staleReason` when they changed.
   */
  readonly plan: (values: Readonly<Record<string, Value>>, attempt: number) => { procedure: string, hash: string, args: Value }
  /** A fresh client transaction id per attempt (a stale attempt had no effect). */
  readonly clientTxnId: (attempt: number) => string
  /** @default 5 */
  readonly maxAttempts?: number
  /** @default 'stale' */
  readonly staleReason?: string
  readonly signal?: AbortSignal
}

/**
 * OLLP-style dependent transaction: read the keys that decide the read/write
 * sets (a snapshot read is enough, correctness comes from the re-check), run
 * the static-set procedure, and try again if it found its reads changed.
 */
export async function reconnoiter (db: ReconnaissanceTarget, init: ReconnaissanceInit): Promise<TxnResult> {
  const max = init.maxAttempts ?? 5
  const stale = init.staleReason ?? 'stale'
  for (let attempt = 1; attempt <= max; attempt++) {
    const readOpts = init.signal === undefined ? { consistency: 'snapshot' as const } : { consistency: 'snapshot' as const, signal: init.signal }
    const { values } = await db.read(init.keys, readOpts)
    const plan = init.plan(values, attempt)
    const req: SubmitRequest = { clientTxnId: init.clientTxnId(attempt), procedure: plan.procedure, hash: plan.hash, args: plan.args }
    const result = await db.submit(req, init.signal === undefined ? {} : { signal: init.signal })
    if (result.status === 'aborted' && result.error === 'TransactionAbort' && result.reason === stale) continue
    return result
  }
  throw new ReconnaissanceFailedError(`reads kept changing after ${max} attempts`)
}
