import '@tideline/net-libp2p'
import { partitionOf, type PartitionSpec } from '@tideline/core'
import type { NetClient } from '@tideline/net-libp2p'
import { startLocalGroup, waitUntil, type ProcessGroup, type RelayProcess } from '@tideline/test-kit'
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
  /** Direct-message frames a relay sent and received in the window, and protocol messages it sent (several share a frame), per transaction, averaged over the relays. */
  readonly framesPerTxnPerRelay: number
  readonly messagesOutPerTxnPerRelay: number
}

/** What two observer relays received over the same window: one of every partition, one of partition 0 only. */
export interface ObserverBytes {
  readonly partitions: number
  readonly txnPerSec: number
  readonly full: { readonly bytes: number, readonly thunks: number }
  readonly one: { readonly bytes: number, readonly thunks: number }
}

export interface PartitionsBenchResult {
  /** Single-partition transfers on 3 full replicas (the reference), on 6, and on 6 in 2 partitions. */
  readonly full: GroupLoad
  /** The same 6 relays as one full-replica group: what more relays alone cost on this machine. */
  readonly full6: GroupLoad
  readonly partitioned: GroupLoad
  /** Half the transfers across both partitions: the latency of one against the other, in one run. */
  readonly mixed: GroupLoad
  readonly observers: ObserverBytes
}

const WARMUP_MS = 2_000
const SPEC: PartitionSpec = { count: 2, replicas: 3, depth: 2 }
const SPEC10: PartitionSpec = { count: 10, replicas: 3, depth: 2 }

/**
 * `pnpm bench partitions`: the same paced load of cold single-partition
 * transfers on a full-replica group of 3 relays, one of 6, then on a group of
 * 6 relays in 2 partitions (`r` = 3: two replica sets); relay CPU per
 * transaction per relay is the measure (2 cores cannot show throughput
 * scaling). Then half the transfers across the partitions, for latency; then
 * the bytes two observer relays receive, one of every partition and one of
 * 1 of 10.
 */
export async function benchPartitions (o: PartitionsBenchOptions): Promise<PartitionsBenchResult> {
  const full = await runLoad(o, 3, undefined, 0)
  const full6 = await runLoad(o, 6, undefined, 0)
  const partitioned = await runLoad(o, 6, SPEC, 0)
  const mixed = await runLoad(o, 6, SPEC, 0.5)
  const observers = await observerBytes(o)
  return { full, full6, partitioned, mixed, observers }
}

/**
 * Accounts by partition of `spec`, and a picker of transfers within one
 * partition (or across two, `crossing`): the partitions taken in turn, so
 * each gets the same share of the load, the accounts at random within them.
 */
export function transfers (o: Pick<PartitionsBenchOptions, 'accounts'>, spec: PartitionSpec): (crossing: boolean) => { from: string, to: string } {
  const names = Array.from({ length: o.accounts }, (_, i) => `a${i}`)
  const byPart = Array.from({ length: spec.count }, (_, p) => names.filter(n => partitionOf(accountKey(n), spec) === p))
  const pick = (list: readonly string[]): string => list[Math.floor(Math.random() * list.length)] as string
  let turn = 0
  return crossing => {
    const p = turn++ % spec.count
    const q = crossing ? (p + 1 + Math.floor(Math.random() * (spec.count - 1))) % spec.count : p
    const from = pick(byPart[p] as string[])
    let to = pick(byPart[q] as string[])
    while (to === from) to = pick(byPart[q] as string[])
    return { from, to }
  }
}

export interface Paced { readonly single: number[], readonly cross: number[], readonly done: number, readonly failed: number }

/** Paced calls from `o.clients` callers over `nodes` for `o.seconds` after the warm-up; `atWarm` runs when the window opens. */
export async function pace (o: PartitionsBenchOptions, nodes: readonly NetClient[], next: (crossing: boolean) => { from: string, to: string }, crossShare: number, atWarm: () => Promise<void>): Promise<Paced> {
  const hash = simRegistry.procedures.get('transfer')?.hash ?? ''
  const single: number[] = []
  const cross: number[] = []
  let failed = 0
  let done = 0
  const t0 = performance.now()
  const measureFrom = t0 + WARMUP_MS
  const end = measureFrom + o.seconds * 1000
  const warmed = new Promise<void>(resolve => { setTimeout(() => { void atWarm().then(resolve) }, WARMUP_MS) })
  const interval = 1000 * o.clients / o.rate
  const every = crossShare > 0 ? Math.round(1 / crossShare) : 0
  await Promise.all(Array.from({ length: o.clients }, async (_, c) => {
    const node = nodes[c % nodes.length] as NetClient
    let at = t0 + (c * interval) / o.clients
    let n = 0
    while (at < end) {
      const wait = at - performance.now()
      if (wait > 0) await new Promise(resolve => { setTimeout(resolve, wait) })
      at += interval
      const crossing = every > 0 && n % every === 1
      const start = performance.now()
      try {
        await node.call({ clientTxnId: `p${c}-${n++}`, procedure: 'transfer', hash, args: { ...next(crossing), amount: 1 } })
        if (start >= measureFrom && performance.now() <= end) {
          done++
          ;(crossing ? cross : single).push(performance.now() - start)
        }
      } catch {
        if (start >= measureFrom) failed++
      }
    }
  }))
  await warmed
  single.sort((a, b) => a - b)
  cross.sort((a, b) => a - b)
  return { single, cross, done, failed }
}

export async function clients (group: ProcessGroup, o: PartitionsBenchOptions): Promise<NetClient[]> {
  const nodes: NetClient[] = []
  for (let i = 0; i < Math.min(4, o.clients); i++) nodes.push(await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 20_000 }))
  return nodes
}

export async function runLoad (o: PartitionsBenchOptions, relays: number, spec: PartitionSpec | undefined, crossShare: number): Promise<GroupLoad> {
  // BENCH_NODE_FLAGS passes flags to the relays' node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where their CPU goes).
  const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(f => f !== '')
  const group: ProcessGroup = await startLocalGroup({ relays, nodeFlags, groupId: spec === undefined ? 'bench-full' : 'bench-parts', ...(spec === undefined ? {} : { partitions: spec }) })
  let nodes: NetClient[] = []
  try {
    nodes = await clients(group, o)
    const cpu = async (): Promise<number[]> => await Promise.all(group.relays.map(async r => await processCpuMs(r.pid)))
    // Frames in and out, and protocol messages out, summed over the relays.
    const traffic = async (): Promise<{ frames: number, messages: number }> => {
      const ms = await Promise.all(group.relays.map(async r => await r.metrics()))
      const sum = (k: string): number => ms.reduce((x, m) => x + (m.get(k) ?? 0), 0)
      return { frames: sum('tideline_frames_total{dir="in"}') + sum('tideline_frames_total{dir="out"}'), messages: sum('tideline_messages_total{dir="out"}') }
    }
    let atStart: number[] = []
    let trafficAtStart = { frames: 0, messages: 0 }
    // The full group's transfers are all "single" (it has one partition); the accounts are picked the same way.
    const r = await pace(o, nodes, transfers(o, spec ?? SPEC), spec === undefined ? 0 : crossShare, async () => { [atStart, trafficAtStart] = await Promise.all([cpu(), traffic()]) })
    const [atEnd, trafficAtEnd] = await Promise.all([cpu(), traffic()])
    const used = atEnd.reduce((sum, c, i) => sum + c - (atStart[i] ?? Number.NaN), 0)
    const done = Math.max(1, r.done)
    const perTxn = used / done
    return {
      relays,
      txnPerSec: r.done / o.seconds,
      failed: r.failed,
      cpuMsPerTxn: perTxn,
      cpuMsPerTxnPerRelay: perTxn / relays,
      singleP50Ms: quantile(r.single, 0.5),
      crossP50Ms: r.cross.length === 0 ? undefined : quantile(r.cross, 0.5),
      framesPerTxnPerRelay: (trafficAtEnd.frames - trafficAtStart.frames) / done / relays,
      messagesOutPerTxnPerRelay: (trafficAtEnd.messages - trafficAtStart.messages) / done / relays
    }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await group.stop().catch(() => {})
  }
}

/**
 * Three relays in 10 partitions and two observer relays, one following every
 * partition and one following partition 0: the direct-message bytes each
 * receives (frames before Noise and muxing; watermark gossip over gossipsub,
 * at most one message a second per voter, is not counted) under the same
 * single-partition transfers spread over the 10 partitions.
 */
export async function observerBytes (o: PartitionsBenchOptions): Promise<ObserverBytes> {
  const group = await startLocalGroup({ relays: 3, groupId: 'bench-observers', partitions: SPEC10 })
  let nodes: NetClient[] = []
  try {
    // The clients first: their calls go to the three voters, not through the observers.
    nodes = await clients(group, o)
    const full = await group.addRelay(['--observer'])
    const one = await group.addRelay(['--observer', '--follow', '0'])
    await waitUntil('both observers hear the group', async () => (await Promise.all([full, one].map(async r => await r.health().catch(() => undefined)))).every(h => h?.ok === true), 30_000)
    const read = async (r: RelayProcess): Promise<{ bytes: number, thunks: number }> => {
      const m = await r.metrics()
      return { bytes: m.get('tideline_bytes_total{dir="in"}') ?? Number.NaN, thunks: m.get('tideline_events_total{event="thunks-received"}') ?? 0 }
    }
    let before: Array<{ bytes: number, thunks: number }> = []
    const r = await pace(o, nodes, transfers(o, SPEC10), 0, async () => { before = await Promise.all([full, one].map(read)) })
    const after = await Promise.all([full, one].map(read))
    const delta = (i: number): { bytes: number, thunks: number } => ({ bytes: (after[i]?.bytes ?? 0) - (before[i]?.bytes ?? 0), thunks: (after[i]?.thunks ?? 0) - (before[i]?.thunks ?? 0) })
    return { partitions: SPEC10.count, txnPerSec: r.done / o.seconds, full: delta(0), one: delta(1) }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await group.stop().catch(() => {})
  }
}
