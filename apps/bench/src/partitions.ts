import '@tideline/net-libp2p'
import { partitionOf, type PartitionSpec } from '@tideline/core'
import type { NetClient } from '@tideline/net-libp2p'
import { startLocalGroup, type ProcessGroup } from '@tideline/test-kit'
import { accountKey, simRegistry } from '@tideline/sim'
import { processCpuMs, quantile } from './closed-loop.js'

export interface PartitionsBenchOptions {
  /** Offered load, transactions per second (paced, open loop over `clients` callers). */
  readonly rate: number
  readonly seconds: number
  readonly clients: number
  readonly accounts: number
}

export interface GroupLoad {
  readonly relays: number
  readonly txnPerSec: number
  readonly failed: number
  /** Relay CPU in the measured window per transaction, summed over the relays, and per relay. */
  readonly cpuMsPerTxn: number
  readonly cpuMsPerTxnPerRelay: number
  readonly singleP50Ms: number
  readonly crossP50Ms: number | undefined
}

export interface PartitionsBenchResult {
  readonly full: GroupLoad
  /** The same 6 relays as one full-replica group: what more relays alone cost on this machine. */
  readonly full6: GroupLoad
  readonly partitioned: GroupLoad
}

const WARMUP_MS = 2_000
const SPEC: PartitionSpec = { count: 2, replicas: 3, depth: 2 }

/**
 * `pnpm bench partitions`: the same paced load of cold transfers on a
 * full-replica group of 3 relays, one of 6, then on a group of 6 relays in 2
 * partitions (`r` = 3: two replica sets), where half the transfers stay in
 * one partition and half cross both. Relay CPU per transaction per relay is
 * the measure (2 cores cannot show throughput scaling).
 */
export async function benchPartitions (o: PartitionsBenchOptions): Promise<PartitionsBenchResult> {
  const full = await runLoad(o, 3, undefined)
  const full6 = await runLoad(o, 6, undefined)
  const partitioned = await runLoad(o, 6, SPEC)
  return { full, full6, partitioned }
}

export async function runLoad (o: PartitionsBenchOptions, relays: number, spec: PartitionSpec | undefined, crossShare = 0.5): Promise<GroupLoad> {
  // BENCH_NODE_FLAGS passes flags to the relays' node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where their CPU goes).
  const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(f => f !== '')
  const group: ProcessGroup = await startLocalGroup({ relays, nodeFlags, groupId: spec === undefined ? 'bench-full' : 'bench-parts', ...(spec === undefined ? {} : { partitions: spec }) })
  const nodes: NetClient[] = []
  try {
    for (let i = 0; i < Math.min(4, o.clients); i++) nodes.push(await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 20_000 }))
    // Accounts by partition (of the partitioned group's function; the full group has one).
    const names = Array.from({ length: o.accounts }, (_, i) => `a${i}`)
    const byPart = [0, 1].map(p => names.filter(n => partitionOf(accountKey(n), SPEC) === p))
    const pick = (list: readonly string[]): string => list[Math.floor(Math.random() * list.length)] as string
    const hash = simRegistry.procedures.get('transfer')?.hash ?? ''
    const single: number[] = []
    const cross: number[] = []
    let failed = 0
    let done = 0
    const t0 = performance.now()
    const measureFrom = t0 + WARMUP_MS
    const end = measureFrom + o.seconds * 1000
    const cpu = async (): Promise<number[]> => await Promise.all(group.relays.map(async r => await processCpuMs(r.pid)))
    let atStart: number[] = []
    const sampled = new Promise<void>(resolve => { setTimeout(() => { void cpu().then(c => { atStart = c; resolve() }) }, WARMUP_MS) })
    const interval = 1000 * o.clients / o.rate
    await Promise.all(Array.from({ length: o.clients }, async (_, c) => {
      const node = nodes[c % nodes.length] as NetClient
      let next = t0 + (c * interval) / o.clients
      let n = 0
      while (next < end) {
        const wait = next - performance.now()
        if (wait > 0) await new Promise(resolve => { setTimeout(resolve, wait) })
        next += interval
        const crossing = crossShare > 0 && n % Math.round(1 / crossShare) === 1
        const p = Math.floor(Math.random() * 2)
        const from = pick(byPart[p] as string[])
        let to = pick(byPart[crossing ? 1 - p : p] as string[])
        if (to === from) to = pick(byPart[1 - p] as string[])
        const start = performance.now()
        try {
          await node.call({ clientTxnId: `p${c}-${n++}`, procedure: 'transfer', hash, args: { from, to, amount: 1 } })
          if (start >= measureFrom && performance.now() <= end) {
            done++
            ;(crossing ? cross : single).push(performance.now() - start)
          }
        } catch {
          if (start >= measureFrom) failed++
        }
      }
    }))
    const atEnd = await cpu()
    await sampled
    const used = atEnd.reduce((sum, c, i) => sum + c - (atStart[i] ?? Number.NaN), 0)
    single.sort((a, b) => a - b)
    cross.sort((a, b) => a - b)
    const perTxn = used / Math.max(1, done)
    // In the full group every transfer is "single": it has one partition.
    const all = spec === undefined ? [...single, ...cross].sort((a, b) => a - b) : single
    return { relays, txnPerSec: done / o.seconds, failed, cpuMsPerTxn: perTxn, cpuMsPerTxnPerRelay: perTxn / relays, singleP50Ms: quantile(all, 0.5), crossP50Ms: spec === undefined ? undefined : quantile(cross, 0.5) }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await group.stop().catch(() => {})
  }
}
