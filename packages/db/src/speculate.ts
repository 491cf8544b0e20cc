import { canonical, declaredKeys, evaluate, makeTimestamp, peerTag, timestampMs, type Peer, type ProcedureRegistry, type RegisteredProcedure, type SubmitRequest, type Thunk, type TxnResult, type Value } from '@tideline/core'
import type { Speculations } from './speculation.js'

/** What a procedure did when run on this replica at once: a guess at its final result, never final itself. */
export type LocalResult<R> =
  | { readonly status: 'committed', readonly value: R, readonly speculative: true }
  | { readonly status: 'aborted', readonly reason: string, readonly error: string, readonly speculative: true }

/**
 * Runs a call's procedure on this replica's state now (a snapshot read of
 * its declared keys and ranges, with this tab's earlier pending writes put
 * over them), as every replica will later run it at its timestamp: the same
 * procedure, the same checks. Answers the result and the writes it made.
 */
export async function speculate (
  peer: Peer, pending: Speculations, registry: ProcedureRegistry, proc: RegisteredProcedure, req: SubmitRequest,
  known: (keys: readonly string[]) => Readonly<Record<string, Value>> | undefined = () => undefined
): Promise<{ result: LocalResult<unknown>, writes: ReadonlyArray<readonly [string, Value | undefined]> }> {
  const keys = declaredKeys(proc, req.args)
  const wanted = [...new Set([...keys.reads, ...keys.writes])]
  const ranges = keys.ranges ?? []
  // Keys the page's subscriptions already hold as the replica has them now need no read from the worker.
  const cached = ranges.length === 0 ? known(wanted) : undefined
  const [read, ...inRanges] = cached !== undefined
    ? [{ ts: undefined, values: cached, entries: undefined }]
    : await Promise.all([
      peer.read(wanted, { consistency: 'snapshot' }),
      ...ranges.map(async range => await peer.read({ range }, { consistency: 'snapshot' }))
    ])
  const values = pending.values(wanted, read?.values ?? {})
  const shown = ranges.map((range, i) => pending.apply({ range }, inRanges[i]?.entries ?? []).entries)
  for (const entries of shown) for (const [k, v] of entries) if (!values.has(k)) values.set(k, v)
  const rangeKeys = (range: { start: string, end?: string | undefined }): readonly string[] => {
    const i = ranges.findIndex(r => r.start === range.start && r.end === range.end)
    return (shown[i] ?? []).map(([k]) => k)
  }
  const ms = Math.max(Date.now(), read?.ts === undefined ? 0 : timestampMs(read.ts))
  const thunk: Thunk = {
    ts: makeTimestamp(ms, peerTag(peer.id), 0),
    epoch: 0,
    coordinator: peer.id,
    seq: 0,
    index: 0,
    procedure: proc.name,
    hash: proc.hash,
    args: req.args,
    ...keys,
    clientTxnId: req.clientTxnId,
    firstAt: req.firstAt ?? ms
  }
  const ev = evaluate(registry, thunk, k => values.get(k), { rangeKeys, caller: { id: peer.id } })
  const result: LocalResult<unknown> = ev.outcome.status === 'committed'
    ? { status: 'committed', value: ev.outcome.value, speculative: true }
    : { status: 'aborted', reason: ev.outcome.reason, error: ev.outcome.error, speculative: true }
  return { result, writes: ev.outcome.status === 'committed' ? ev.writes : [] }
}

/** Whether the speculative result turned out the same as the final one. */
export function verdictOf (guess: LocalResult<unknown>, final: TxnResult): 'confirmed' | 'corrected' {
  if (guess.status === 'committed' && final.status === 'committed') return canonical(guess.value) === canonical(final.value) ? 'confirmed' : 'corrected'
  if (guess.status === 'aborted' && final.status === 'aborted') return guess.error === final.error && guess.reason === final.reason ? 'confirmed' : 'corrected'
  return 'corrected'
}
