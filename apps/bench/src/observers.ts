import '@tideline/net-libp2p'
import { spawn, type ChildProcess } from 'node:child_process'
import { setPriority } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { encodeSigned, type NetClient } from '@tideline/net-libp2p'
import { startLocalGroup, waitQuiescent, waitUntil, type ProcessGroup } from '@tideline/test-kit'
import { processCpuMs, quantile } from './closed-loop.js'
import { clients, pace, transfers } from './partitions.js'

export interface ObserversBenchOptions {
  /** Offered load, transactions per second (paced, open loop over `clients` callers). */
  readonly rate: number
  readonly seconds: number
  readonly clients: number
  readonly accounts: number
  /** The observer counts, one group each. */
  readonly counts: readonly number[]
  /** Whether the observers join the dissemination tree (false: every relay serves every observer, the baseline). */
  readonly tree: boolean
}

export interface ObserversPoint {
  readonly observers: number
  readonly txnPerSec: number
  readonly failed: number
  /** What the 3 relays sent in the window (direct frames before Noise and muxing, plus watermark gossip published), per transaction, summed over the relays. */
  readonly bytesOutPerTxn: number
  readonly messagesOutPerTxn: number
  /** Those messages by type, per transaction (the transport's counters). */
  readonly messagesByType: Readonly<Record<string, number>>
  /** Relay CPU in the window per transaction, summed over the relays. */
  readonly cpuMsPerTxn: number
  /** The bench process's CPU in the window per transaction: the callers. */
  readonly benchCpuMsPerTxn: number
  /** The observers' processes' CPU in the window per transaction (on users' machines, not the relays'; here at the lowest priority). */
  readonly observersCpuMsPerTxn: number
  /** Times observers lost their place in the tree during the load (a parent silent for the failure detector's bound, or struck out), and gap requests they sent (to the voters). */
  readonly unplaced: number
  readonly gapRequests: number
  /** Batches passed on and checked, per observer per transaction (each receiver checks a batch once). */
  readonly checkedPerObserverTxn: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Observers that reached the relays' digest once the load stopped (of `observers`). */
  readonly caughtUp: number
  /** Milliseconds from the relays' quiescence until the last observer had their digest. */
  readonly catchUpMs: number
}

const PICK = { count: 1, replicas: 3, depth: 2 }

/**
 * `pnpm bench observers`: 3 relay processes (all voters) under the same paced
 * load of cold transfers, with 0, 16 and 48 observer peers that follow the
 * group (Node peers, each its own libp2p node and memory store, connected to
 * the three relays as a tab is, in processes of their own at the lowest CPU
 * priority: observer-host.ts), in the dissemination tree unless `tree` is
 * false. The relays' outgoing bytes and messages and their CPU per
 * transaction show what each observer costs them; commit p50 what it costs
 * the callers.
 */
export async function benchObservers (o: ObserversBenchOptions, log: (line: string) => void): Promise<ObserversPoint[]> {
  const points: ObserversPoint[] = []
  for (const count of o.counts) {
    points.push(await runWith(o, count))
    log(`  ${count} observers done`)
  }
  return points
}

/** A process of observer peers (observer-host.ts), at the lowest CPU priority. */
class ObserverHost {
  private readonly child: ChildProcess
  private readonly answers: Array<(line: string) => void> = []

  constructor (config: { genesis: string, invite: string, relays: readonly string[], count: number, tree: boolean }) {
    // OBSERVERS_PROF_DIR: each host writes a V8 CPU profile there (where the observers' time goes).
    const prof = process.env.OBSERVERS_PROF_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.OBSERVERS_PROF_DIR}`]
    this.child = spawn(process.execPath, [...prof, '--conditions=@tideline/source', '--import', 'tsx', HOST], { stdio: ['pipe', 'pipe', 'inherit'] })
    if (this.child.pid !== undefined) setPriority(this.child.pid, 19)
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', line => { this.answers.shift()?.(line) })
    // A host that died answers nothing more: whoever waits is told so (the bench fails rather than hangs).
    this.child.on('exit', code => { for (const a of this.answers.splice(0)) a(JSON.stringify({ exited: code })) })
    this.child.stdin?.write(`${JSON.stringify(config)}\n`)
  }

  get pid (): number | undefined { return this.child.pid }

  /** The next line it writes, parsed (the answer to what was asked last). */
  async next<T> (ask?: string): Promise<T> {
    if (this.child.exitCode !== null) throw new Error(`an observer host exited (${this.child.exitCode})`)
    const answer = new Promise<string>(resolve => { this.answers.push(resolve) })
    if (ask !== undefined) this.child.stdin?.write(`${ask}\n`)
    const parsed = JSON.parse(await answer) as T & { exited?: number }
    if (parsed.exited !== undefined) throw new Error(`an observer host exited (${parsed.exited})`)
    return parsed
  }

  async status (): Promise<{ placed: number, digests: string[], checked: number, forged: number, unplaced: number, gaps: number }> {
    return await this.next('status')
  }

  async stop (): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise(resolve => { this.child.once('exit', resolve) })
    this.child.stdin?.write('stop\n')
    await Promise.race([exited, new Promise(resolve => { setTimeout(resolve, 10_000) })])
    this.child.kill('SIGKILL')
  }
}

const HOST = fileURLToPath(new URL('./observer-host.ts', import.meta.url))
/** Observers per host process (two processes at 48: both cores' leftovers). */
const PER_HOST = 24

async function runWith (o: ObserversBenchOptions, count: number): Promise<ObserversPoint> {
  const group: ProcessGroup = await startLocalGroup({ relays: 3, groupId: `bench-observers-${count}` })
  const hosts: ObserverHost[] = []
  let nodes: NetClient[] = []
  try {
    nodes = await clients(group, o)
    for (let left = count; left > 0; left -= PER_HOST) hosts.push(new ObserverHost({ genesis: encodeSigned(group.genesis), invite: encodeSigned(group.invite), relays: group.relays.map(r => r.tcp), count: Math.min(PER_HOST, left), tree: o.tree }))
    await Promise.all(hosts.map(async h => await h.next()))
    const statuses = async (): Promise<Array<{ placed: number, digests: string[], checked: number, forged: number, unplaced: number, gaps: number }>> => await Promise.all(hosts.map(async h => await h.status()))
    // Every observer is followed by the relays before the load starts.
    await waitUntil(`the relays see ${count} observers`, async () => (await Promise.all(group.relays.map(async r => (await r.health()).peers))).every(p => p >= count + 2), 60_000)
    // In the tree, every observer has its place before the load starts.
    if (o.tree) await waitUntil(`${count} observers placed in the tree`, async () => (await statuses()).reduce((n, x) => n + x.placed, 0) === count, 60_000)
    const cpu = async (): Promise<number[]> => await Promise.all([...group.relays.map(async r => await processCpuMs(r.pid)), processCpuMs(process.pid), ...hosts.map(async h => await processCpuMs(h.pid))])
    const sent = async (): Promise<{ bytes: number, messages: number, byType: Map<string, number> }> => {
      const ms = await Promise.all(group.relays.map(async r => await r.metrics()))
      const sum = (k: string): number => ms.reduce((x, m) => x + (m.get(k) ?? 0), 0)
      // The relays' direct messages by type (the transport's `out-<type>` counters).
      const byType = new Map<string, number>()
      for (const m of ms) for (const [k, v] of m) { const t = /event="out-([a-z-]+)"/.exec(k)?.[1]; if (t !== undefined) byType.set(t, (byType.get(t) ?? 0) + v) }
      return {
        bytes: sum('tideline_bytes_total{dir="out"}') + sum('tideline_bytes_total{dir="gossip-out"}'),
        messages: sum('tideline_messages_total{dir="out"}') + sum('tideline_gossip_messages_total{dir="out"}'),
        byType
      }
    }
    let cpuAt: number[] = []
    let sentAt = { bytes: 0, messages: 0, byType: new Map<string, number>() }
    const checkedNow = async (): Promise<number> => (await statuses()).reduce((n, x) => n + x.checked, 0)
    let checkedAt = 0
    const churn = async (): Promise<{ unplaced: number, gaps: number }> => (await statuses()).reduce((n, x) => ({ unplaced: n.unplaced + x.unplaced, gaps: n.gaps + x.gaps }), { unplaced: 0, gaps: 0 })
    const churnAt = await churn()
    const r = await pace(o, nodes, transfers(o, PICK), 0, async () => { [cpuAt, sentAt, checkedAt] = await Promise.all([cpu(), sent(), checkedNow()]) })
    const [cpuEnd, sentEnd, checkedEnd] = await Promise.all([cpu(), sent(), checkedNow()])
    const done = Math.max(1, r.done)
    const churnEnd = await churn()
    await waitQuiescent(group.relays, 60_000)
    const target = await group.relays[0]?.health()
    const quiet = performance.now()
    let caughtUp = 0
    await waitUntil('every observer reaches the relays\' digest', async () => {
      const now = await statuses()
      caughtUp = now.reduce((n, x) => n + x.digests.filter(d => d === target?.digest).length, 0)
      return caughtUp === count
    }, 60_000).catch(() => {})
    return {
      observers: count,
      txnPerSec: r.done / o.seconds,
      failed: r.failed,
      bytesOutPerTxn: (sentEnd.bytes - sentAt.bytes) / done,
      messagesOutPerTxn: (sentEnd.messages - sentAt.messages) / done,
      messagesByType: Object.fromEntries([...sentEnd.byType].map(([t, n]) => [t, (n - (sentAt.byType.get(t) ?? 0)) / done]).filter(([, n]) => (n as number) > 0.005)),
      cpuMsPerTxn: cpuEnd.slice(0, 3).reduce((sum, c, i) => sum + c - (cpuAt[i] ?? Number.NaN), 0) / done,
      benchCpuMsPerTxn: ((cpuEnd[3] ?? Number.NaN) - (cpuAt[3] ?? Number.NaN)) / done,
      observersCpuMsPerTxn: cpuEnd.slice(4).reduce((sum, c, i) => sum + c - (cpuAt[4 + i] ?? Number.NaN), 0) / done,
      unplaced: churnEnd.unplaced - churnAt.unplaced,
      gapRequests: churnEnd.gaps - churnAt.gaps,
      checkedPerObserverTxn: count === 0 ? 0 : (checkedEnd - checkedAt) / count / done,
      p50Ms: quantile(r.single, 0.5),
      p99Ms: quantile(r.single, 0.99),
      caughtUp,
      catchUpMs: performance.now() - quiet
    }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await Promise.all(hosts.map(async h => { await h.stop() }))
    await group.stop().catch(() => {})
  }
}
