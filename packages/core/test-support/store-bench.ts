import { TS_INFINITY, makeTimestamp, timestampMs, peerTag, type Settlement, type Store, type Thunk, type Timestamp } from '../src/index.js'

export interface StoreBenchOptions {
  readonly batches: number
  /** Thunks per batch, and settlements per batch. */
  readonly perBatch: number
  /** Point reads timed for `readP50Ms` (0: none). */
  readonly reads: number
  /** Also settle every thunk (false: the apply phase only). */
  readonly settle: boolean
}

export interface StoreBenchResult {
  /** Thunks durably written per second, in strict batches of `perBatch`. */
  readonly applyPerSec: number
  /** Settlements (one version each) written per second, in relaxed batches of `perBatch`; NaN when not measured. */
  readonly settlePerSec: number
  /** Median latency of one `latest` call; NaN when not measured. */
  readonly readP50Ms: number
}

/** One key per this many settlements, so keys collect several versions each. */
const VERSIONS_PER_KEY = 4

/**
 * The write path a replica uses, against any Store (the same code runs in
 * Node and in Chromium): thunks appended in strict batches, then settled in
 * relaxed batches, then point reads with `latest`. The store should be empty.
 */
export async function benchStore (store: Store, opts: StoreBenchOptions): Promise<StoreBenchResult> {
  const { batches, perBatch } = opts
  const tag = peerTag('bench')
  const keys = Math.max(1, Math.floor((batches * perBatch) / VERSIONS_PER_KEY))
  const tsOf = (b: number, j: number): Timestamp => makeTimestamp(1_000_000 + b, tag, j)
  const total = batches * perBatch

  const thunkStart = performance.now()
  for (let b = 0; b < batches; b++) {
    const thunks: Thunk[] = []
    for (let j = 0; j < perBatch; j++) {
      const n = b * perBatch + j + 1
      const key = `k${n % keys}`
      thunks.push({ ts: tsOf(b, j), epoch: 0, coordinator: 'bench', seq: b + 1, index: j, procedure: 'set', hash: 'h', args: { key, n }, reads: [key], writes: [key], clientTxnId: `c${n}`, firstAt: timestampMs(tsOf(b, j)) })
    }
    // A batch is one record, as a replica stores what a coordinator sealed.
    await store.write({ batches: [{ epoch: 0, coordinator: 'bench', seq: b + 1, thunks }], meta: [['applied', b]], durability: 'strict' })
  }
  const applyPerSec = total / ((performance.now() - thunkStart) / 1000)
  if (!opts.settle) return { applyPerSec, settlePerSec: Number.NaN, readP50Ms: Number.NaN }

  const settleStart = performance.now()
  for (let b = 0; b < batches; b++) {
    const settle: Settlement[] = []
    for (let j = 0; j < perBatch; j++) {
      const seq = b * perBatch + j + 1
      settle.push({ ts: tsOf(b, j), outcome: { status: 'committed', value: null }, writes: [[`k${seq % keys}`, { n: seq }]] })
    }
    await store.write({ settle, durability: 'relaxed' })
  }
  const settlePerSec = total / ((performance.now() - settleStart) / 1000)

  const latencies: number[] = []
  const stride = 7919 // a prime: spreads the reads over the keys without an RNG
  for (let r = 0; r < opts.reads; r++) {
    const key = `k${(r * stride) % keys}`
    const t0 = performance.now()
    await store.latest(key, TS_INFINITY)
    latencies.push(performance.now() - t0)
  }
  latencies.sort((a, b) => a - b)
  return { applyPerSec, settlePerSec, readP50Ms: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN }
}
