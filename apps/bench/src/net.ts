import '@tideline/net-libp2p'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NetClient } from '@tideline/net-libp2p'
import { startLocalGroup } from '@tideline/test-kit'
import { simRegistry } from '@tideline/sim'
import { processCpuMs, quantile } from './closed-loop.js'

export interface NetBenchOptions {
  readonly clients: number
  readonly seconds: number
  readonly accounts: number
  /** libp2p client nodes the closed-loop clients share (each a real peer with its own connections). */
  readonly clientNodes: number
  /** Run the relays under --cpu-prof and summarise where their CPU went. */
  readonly profile: boolean
  /** After the load, how long to measure the idle relays' CPU (0: skip). */
  readonly idleSeconds: number
  /** A group of signed calls: clients sign, every relay checks each caller (`--signed-calls`). */
  readonly signedCalls?: boolean
}

export interface NetBenchResult {
  readonly txnPerSec: number
  readonly committed: number
  readonly aborted: number
  readonly failed: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly relayCpu: Array<{ relay: number, cpuMs: number }>
  /** Relay CPU in the measured window, summed over the relays, per transaction. */
  readonly relayCpuMsPerTxn: number
  /**
   * This process's CPU in the measured window (the closed-loop clients and
   * their libp2p client peers, Noise and all) per transaction: with the
   * relays', what one transaction costs the machine.
   */
  readonly clientCpuMsPerTxn: number
  /** Transactions per batch the relays sealed, over the whole run. */
  readonly thunksPerBatch: number
  /** Each relay's CPU while the group sat idle (clients connected), as a share of one core. */
  readonly idleCoreShare: number[]
  readonly profile: Array<{ name: string, selfMs: number, share: number }>
  readonly categories: Array<{ name: string, share: number }>
}

const WARMUP_MS = 2_000

/**
 * `pnpm bench net`: three relay processes on loopback (LevelStore, TCP),
 * `clients` closed-loop clients spread over `clientNodes` libp2p client
 * peers in this process, each doing 2-key transfers between random
 * accounts out of `accounts`. Latency is a whole call: submit, quorum
 * write, watermark, evaluation, reply.
 */
export async function benchNet (o: NetBenchOptions): Promise<NetBenchResult> {
  const profDir = o.profile ? join(process.cwd(), '.bench-profiles', `net-${Date.now()}`) : undefined
  const r = await runNet(o, profDir)
  if (profDir === undefined) return r
  const prof = await summariseProfiles(profDir)
  return { ...r, profile: prof.top, categories: prof.categories }
}

async function runNet (o: NetBenchOptions, profDir: string | undefined): Promise<NetBenchResult> {
  const group = await startLocalGroup({ relays: 3, groupId: 'bench-net', ...(o.signedCalls === true ? { signedCalls: true } : {}), ...(profDir === undefined ? {} : { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] }) })
  const nodes: NetClient[] = []
  try {
    for (let i = 0; i < o.clientNodes; i++) {
      nodes.push(await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 20_000 }))
    }
    const hash = simRegistry.procedures.get('transfer')?.hash ?? ''
    const latencies: number[] = []
    let committed = 0
    let aborted = 0
    let failed = 0
    const t0 = performance.now()
    const measureFrom = t0 + WARMUP_MS
    const end = measureFrom + o.seconds * 1000
    const relaysCpu = async (): Promise<number[]> => await Promise.all(group.relays.map(async r => await processCpuMs(r.pid)))
    let cpuAtStart: number[] = []
    let ownAtStart: NodeJS.CpuUsage | undefined
    const sampled = new Promise<void>(resolve => { setTimeout(() => { ownAtStart = process.cpuUsage(); void relaysCpu().then(c => { cpuAtStart = c; resolve() }) }, WARMUP_MS) })
    await Promise.all(Array.from({ length: o.clients }, async (_, c) => {
      const node = nodes[c % nodes.length] as NetClient
      let n = 0
      while (performance.now() < end) {
        const from = Math.floor(Math.random() * o.accounts)
        let to = Math.floor(Math.random() * (o.accounts - 1))
        if (to >= from) to++
        const start = performance.now()
        try {
          const r = await node.call({ clientTxnId: `b${c}-${n++}`, procedure: 'transfer', hash, args: { from: `a${from}`, to: `a${to}`, amount: 1 } })
          if (start >= measureFrom && performance.now() <= end) {
            latencies.push(performance.now() - start)
            if (r.status === 'committed') committed++
            else aborted++
          }
        } catch {
          if (start >= measureFrom) failed++
        }
      }
    }))
    const ownUsed = process.cpuUsage(ownAtStart)
    const cpuAtEnd = await relaysCpu()
    await sampled
    let minted = 0
    let sealed = 0
    for (const r of group.relays) {
      const m = await r.metrics()
      minted += m.get('tideline_txns_coordinated_total') ?? 0
      sealed += m.get('tideline_batches_coordinated_total') ?? 0
    }
    latencies.sort((a, b) => a - b)
    const txnPerSec = (committed + aborted) / o.seconds
    const loadCpuMs = cpuAtEnd.reduce((sum, c, i) => sum + c - (cpuAtStart[i] ?? Number.NaN), 0)
    const relayCpu = group.relays.map((r, i) => ({ relay: r.index, cpuMs: cpuAtEnd[i] as number }))
    // Idle: the clients stay connected and do nothing; what the relays burn now is their heartbeat.
    let idleCoreShare: number[] = []
    if (o.idleSeconds > 0) {
      await new Promise(resolve => { setTimeout(resolve, 2_000) })
      const before = await relaysCpu()
      await new Promise(resolve => { setTimeout(resolve, o.idleSeconds * 1000) })
      const after = await relaysCpu()
      idleCoreShare = after.map((c, i) => (c - (before[i] as number)) / (o.idleSeconds * 1000))
    }
    return { txnPerSec, committed, aborted, failed, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), relayCpu, relayCpuMsPerTxn: loadCpuMs / Math.max(1, committed + aborted), clientCpuMsPerTxn: (ownUsed.user + ownUsed.system) / 1000 / Math.max(1, committed + aborted), thunksPerBatch: minted / Math.max(1, sealed), idleCoreShare, profile: [], categories: [] }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    // Relays write their profiles as they exit.
    await group.stop().catch(() => {})
  }
}

interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }>
  samples: number[]
  timeDeltas: number[]
}

/** Where a frame's code lives, coarsely: our packages by name, dependencies by package, else node internals. */
function category (url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'gc'
  if (fn === '(idle)' || fn === '(program)') return fn
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1] as string
  const ours = /\/(packages|apps)\/([^/]+)\//.exec(url)
  if (ours !== null) return `@tideline/${ours[2]}`
  if (url.startsWith('node:') || url === '') return 'node internals'
  return 'other'
}

/** Self time per function and per category over every relay's .cpuprofile. */
export async function summariseProfiles (dir: string): Promise<{ top: NetBenchResult['profile'], categories: NetBenchResult['categories'] }> {
  const self = new Map<string, number>()
  const cats = new Map<string, number>()
  let total = 0
  for (const f of (await readdir(dir)).filter(x => x.endsWith('.cpuprofile'))) {
    const p = JSON.parse(await readFile(join(dir, f), 'utf8')) as CpuProfile
    const byId = new Map(p.nodes.map(n => [n.id, n]))
    p.samples.forEach((id, i) => {
      const node = byId.get(id)
      if (node === undefined) return
      const dt = (p.timeDeltas[i] ?? 0) / 1000
      const { functionName, url, lineNumber } = node.callFrame
      const c = category(url, functionName)
      if (c === '(idle)') return
      total += dt
      const name = `${functionName === '' ? '(anonymous)' : functionName} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`
      self.set(name, (self.get(name) ?? 0) + dt)
      cats.set(c, (cats.get(c) ?? 0) + dt)
    })
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([name, ms]) => ({ name, selfMs: ms, share: ms / total }))
  const categories = [...cats].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([name, ms]) => ({ name, share: ms / total }))
  return { top, categories }
}
