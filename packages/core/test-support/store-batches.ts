import { makeTimestamp, peerTag, type Batch, type Thunk, type Timestamp, type Value } from '../src/index.js'
import type { StoreFactory, StoreHandle } from './store-compliance-cases.js'

/** Thunks and batches the store suites write. */
export const tag = peerTag('v0')
export const tagB = peerTag('v1')
export const tsAt = (n: number, t = tag): Timestamp => makeTimestamp(1_000_000 + n, t, 0)

export function thunkAt (n: number, opts: { coordinator?: string, seq?: number, index?: number, epoch?: number, args?: Value } = {}): Thunk {
  const coordinator = opts.coordinator ?? 'v0'
  return {
    ts: tsAt(n, coordinator === 'v0' ? tag : tagB),
    epoch: opts.epoch ?? 0,
    coordinator,
    seq: opts.seq ?? n,
    index: opts.index ?? 0,
    procedure: 'p',
    hash: 'h',
    args: opts.args ?? { n },
    reads: ['k'],
    writes: ['k'],
    clientTxnId: `c${coordinator}-${n}`,
    firstAt: 1_000_000 + n
  }
}

/** Batch `seq` holding the thunks at `ns` (in that order). */
export function batchOf (seq: number, ns: readonly number[], opts: { coordinator?: string, epoch?: number, args?: (n: number) => Value } = {}): Batch {
  const coordinator = opts.coordinator ?? 'v0'
  const epoch = opts.epoch ?? 0
  return { epoch, coordinator, seq, thunks: ns.map((n, index) => thunkAt(n, { coordinator, epoch, seq, index, ...(opts.args === undefined ? {} : { args: opts.args(n) }) })) }
}


/** Opens a fresh store, runs `fn`, then closes and cleans up whatever happens. */
export async function withStore (factory: StoreFactory, fn: (h: StoreHandle) => Promise<void>): Promise<void> {
  const h = await factory.open()
  try {
    await fn(h)
  } finally {
    await h.store.close().catch(() => {})
    await h.cleanup?.()
  }
}
