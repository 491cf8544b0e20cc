import { performance } from 'node:perf_hooks'
import { TS_INFINITY, makeTimestamp, peerTag } from '@tideline/core'
import type { Settlement, Thunk, Timestamp } from '@tideline/core'
import { LevelStore } from './level-store.js'

export interface BenchLevelOptions {
  /** Directory for the database; should be empty (the caller removes it afterwards). */
  readonly path: string
  readonly batches: number
  /** Thunks per batch, and settlements per batch. */
  readonly perBatch: number
  /**
   * Point reads timed for `readP50Ms`.
   * @default 1000
   */
  readonly reads?: number
}

export interface BenchLevelResult {
  /** Thunks durably written per second, in strict batches of `perBatch`. */
  readonly applyPerSec: number
  /** Settlements (one version each) written per second, in relaxed batches of `perBatch`. */
  readonly settlePerSec: number
  /** Median latency of one `latest` call. */
  readonly readP50Ms: number
}

/** One key per this many settlements, so keys collect several versions each. */
const VERSIONS_PER_KEY = 4

/**
 * Measures the LevelStore on the write path a replica uses: thunks appended in
 * strict batches, then settled in relaxed batches, then point reads with `latest`.
 */
export async function benchLevelApply (opts: BenchLevelOptions): Promise<BenchLevelResult> {
  const { batches, perBatch } = opts
  const reads = opts.reads ?? 1000
  const tag = peerTag('bench')
  const keys = Math.max(1, Math.floor((batches * perBatch) / VERSIONS_PER_KEY))
  const tsOf = (b: number, j: number): Timestamp => makeTimestamp(1_000_000 + b, tag, j)
  const store = await LevelStore.open({ path: opts.path })
  try {
    const thunkStart = performance.now()
    for (let b = 0; b < batches; b++) {
      const thunks: Thunk[] = []
      for (let j = 0; j < perBatch; j++) {
        const seq = b * perBatch + j + 1
        const key = `k${seq % keys}`
        thunks.push({ ts: tsOf(b, j), epoch: 0, coordinator: 'bench', seq, procedure: 'set', hash: 'h', args: { key, n: seq }, reads: [key], writes: [key], clientTxnId: `c${seq}` })
      }
      await store.write({ thunks, meta: [['applied', b]], durability: 'strict' })
    }
    const thunkMs = performance.now() - thunkStart

    const settleStart = performance.now()
    for (let b = 0; b < batches; b++) {
      const settle: Settlement[] = []
      for (let j = 0; j < perBatch; j++) {
        const seq = b * perBatch + j + 1
        settle.push({ ts: tsOf(b, j), outcome: { status: 'committed', value: null }, writes: [[`k${seq % keys}`, { n: seq }]] })
      }
      await store.write({ settle, durability: 'relaxed' })
    }
    const settleMs = performance.now() - settleStart

    const latencies: number[] = []
    const stride = 7919 // a prime: spreads the reads over the keys without an RNG
    for (let r = 0; r < reads; r++) {
      const key = `k${(r * stride) % keys}`
      const t0 = performance.now()
      await store.latest(key, TS_INFINITY)
      latencies.push(performance.now() - t0)
    }
    latencies.sort((a, b) => a - b)
    const total = batches * perBatch
    return {
      applyPerSec: total / (thunkMs / 1000),
      settlePerSec: total / (settleMs / 1000),
      readP50Ms: latencies[Math.floor(latencies.length / 2)] ?? 0
    }
  } finally {
    await store.close()
  }
}
