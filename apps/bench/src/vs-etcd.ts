import '@tideline/net-libp2p'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createRegistry, type Value } from '@tideline/core'
import { NetClient } from '@tideline/net-libp2p'
import { startLocalGroup } from '@tideline/test-kit'
import { Etcd3 } from 'etcd3'
import { closedLoop, peakRssMiB, type ClosedLoopResult, type OpOutcome } from './closed-loop.js'
import { ensureEtcd, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js'
import { INITIAL_BALANCE, procedures } from './vs-etcd-procedures.js'

export type WorkloadName = 'transfers-hot' | 'transfers-cold' | 'puts' | 'strict-reads' | 'list-append'
export type SystemName = 'tideline' | 'etcd'

interface Workload {
  readonly name: WorkloadName
  readonly kind: 'transfer' | 'put' | 'read' | 'append'
  /** Accounts the transfers and reads pick from, lists the appends pick from. */
  readonly keys: number
}

export const WORKLOADS: readonly Workload[] = [
  { name: 'transfers-hot', kind: 'transfer', keys: 10 },
  { name: 'transfers-cold', kind: 'transfer', keys: 10_000 },
  { name: 'puts', kind: 'put', keys: 1000 },
  { name: 'strict-reads', kind: 'read', keys: 10_000 },
  { name: 'list-append', kind: 'append', keys: 100 }
]

export interface VsEtcdOptions {
  readonly clients: number
  readonly seconds: number
  /** libp2p client peers (Tideline) and etcd3 clients (gRPC channels) the closed-loop clients share. */
  readonly clientNodes: number
  /** Tideline relays (all voters) and etcd members. @default 3 */
  readonly voters: number
  /** Only these workloads (default: all). */
  readonly only?: readonly WorkloadName[]
  /** Only this system (default: both). */
  readonly system?: SystemName
  /** Runs per workload and system, alternating systems; the row reported is the run with the median throughput. @default 1 */
  readonly repeat?: number
  readonly log: (line: string) => void
}

export interface VsEtcdRow extends ClosedLoopResult {
  readonly workload: WorkloadName
  readonly system: SystemName
  /**
   * Transfers: every account's balance summed after the run equals accounts × 100.
   * List-append: every committed append is in its list exactly once, and nothing else is.
   */
  readonly conserved?: boolean
  /** Bytes every server sent (Tideline: direct frames before Noise, and gossip; etcd: gRPC to clients and peer traffic) per completed transaction. */
  readonly bytesPerTxn: number
  /** Tideline only: protocol messages every relay sent per completed transaction. */
  readonly messagesPerTxn?: number
  /** Tideline only: direct-message frames (each one Noise message or more) every relay sent per completed transaction. */
  readonly framesPerTxn?: number
  /** Tideline only: watermark gossip messages published and delivered per second, over all relays. */
  readonly gossipPerSec?: number
  /** The largest peak resident memory of one server process, MiB. */
  readonly peakRssMiB: number
  /** With `repeat` > 1: the throughput of every run, in the order run (this row is the median one). */
  readonly runs?: readonly number[]
}

export interface VsEtcdResult {
  readonly etcdVersion: string
  readonly clients: number
  readonly seconds: number
  readonly warmupMs: number
  readonly clientNodes: number
  readonly voters: number
  readonly rows: readonly VsEtcdRow[]
  /** Tideline throughput / etcd throughput per workload run on both. */
  readonly ratios: Readonly<Partial<Record<WorkloadName, number>>>
}

const WARMUP_MS = 2_000
const SETTLE_MS = 5_000
const execFileAsync = promisify(execFile)
const PROCEDURES = fileURLToPath(new URL('./vs-etcd-procedures.ts', import.meta.url))
const registry = createRegistry(procedures)
const hashOf = (name: string): string => registry.procedures.get(name)?.hash ?? ''

/** Two distinct random accounts out of `n`. */
function pickPair (n: number): [number, number] {
  const from = Math.floor(Math.random() * n)
  let to = Math.floor(Math.random() * (n - 1))
  if (to >= from) to++
  return [from, to]
}

/**
 * Flushes dirty pages and pauses before each measured run: writeback from the
 * run before (etcd's WAL, a removed data directory) otherwise lands in the
 * next run's fsyncs. Measured once: Tideline cold transfers right after the
 * etcd runs did 428 txn/s without this, 745 with it.
 */
async function settle (): Promise<void> {
  await execFileAsync('sync')
  await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
}

const putKey = (c: number, n: number): string => `put/c${c}/k${n % 1000}`
const accountKey = (prefix: string, i: number): string => `${prefix}acct/a${i}`
const listKey = (prefix: string, i: number): string => `${prefix}list/l${i}`
const randomKey = (n: number): number => Math.floor(Math.random() * n)

/** Sums every sample of `name` (any labels) in a Prometheus text exposition. */
export function sumMetric (text: string, name: string): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

async function metricsText (url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
}

/** Which list-append elements committed, and which calls failed with their outcome unknown. */
class AppendLedger {
  readonly committed = new Set<string>()
  readonly unknown = new Set<string>()

  /** Runs one append of `v`, recording its outcome. */
  async track (v: string, append: () => Promise<OpOutcome>): Promise<OpOutcome> {
    try {
      const r = await append()
      if (r.committed) this.committed.add(v)
      return r
    } catch (err) {
      this.unknown.add(v)
      throw err
    }
  }

  /** See appendsConserved. */
  conserved (lists: ReadonlyArray<readonly string[]>): boolean {
    return appendsConserved(lists, this.committed, this.unknown)
  }
}

/** One scrape of every server's `/metrics`: a metric's samples summed over all of them. */
async function scrapeAll (urls: readonly string[]): Promise<(name: string) => number> {
  const texts = await Promise.all(urls.map(metricsText))
  return name => texts.reduce((s, t) => s + sumMetric(t, name), 0)
}

/**
 * The appends that committed are exactly the elements found in the lists,
 * each once; an append whose call failed (outcome unknown) may be there or not.
 */
function appendsConserved (lists: ReadonlyArray<readonly string[]>, committed: ReadonlySet<string>, unknown: ReadonlySet<string>): boolean {
  const seen = new Set<string>()
  for (const list of lists) {
    for (const v of list) {
      if (seen.has(v) || (!committed.has(v) && !unknown.has(v))) return false
      seen.add(v)
    }
  }
  for (const v of committed) if (!seen.has(v)) return false
  return true
}

/**
 * `pnpm bench vs-etcd`: each workload against a fresh group of three
 * `tideline-relay` processes and against a 3-member etcd cluster, same
 * clients, same warm-up and measured window, one system at a time. The two
 * systems alternate run by run (etcd, Tideline, etcd, ...), so both see the
 * same machine: this one's CPU speed drifts by 10% and more between minutes.
 */
export async function benchVsEtcd (o: VsEtcdOptions): Promise<VsEtcdResult> {
  const workloads = WORKLOADS.filter(w => o.only === undefined || o.only.includes(w.name))
  const etcdVersion = o.system === 'tideline' ? '-' : await ensureEtcd(o.log)
  const repeat = Math.max(1, o.repeat ?? 1)
  const rows: VsEtcdRow[] = []
  const cluster = o.system === 'tideline' ? undefined : await startEtcdCluster({ members: o.voters })
  try {
    for (const w of workloads) {
      const runs: Record<SystemName, VsEtcdRow[]> = { etcd: [], tideline: [] }
      for (let i = 0; i < repeat; i++) {
        if (cluster !== undefined) {
          await settle()
          const r = await runEtcd(cluster, w, o, i)
          o.log(`etcd ${w.name}: ${r.txnPerSec.toFixed(0)} txn/s, p50 ${r.p50Ms.toFixed(1)} ms, ${r.retries} conflict retries${r.failed > 0 ? `, ${r.failed} failed (${r.firstError ?? ''})` : ''}`)
          runs.etcd.push(r)
        }
        if (o.system !== 'etcd') {
          await settle()
          const r = await runTideline(w, o)
          o.log(`tideline ${w.name}: ${r.txnPerSec.toFixed(0)} txn/s, p50 ${r.p50Ms.toFixed(1)} ms, relay CPU ${r.serverCpuMsPerTxn.toFixed(2)} ms/txn, ${(r.framesPerTxn ?? Number.NaN).toFixed(2)} frames/txn${r.failed > 0 ? `, ${r.failed} failed (${r.firstError ?? ''})` : ''}`)
          runs.tideline.push(r)
        }
      }
      for (const list of [runs.etcd, runs.tideline]) {
        const median = medianRun(list)
        if (median === undefined) continue
        // A check that failed in any run fails the row.
        const failedCheck = list.some(r => r.conserved === false)
        rows.push(repeat > 1 ? { ...median, runs: list.map(r => r.txnPerSec), ...(failedCheck ? { conserved: false } : {}) } : median)
      }
    }
  } finally {
    await cluster?.stop()
  }
  const tput = (w: WorkloadName, s: SystemName): number | undefined => rows.find(r => r.workload === w && r.system === s)?.txnPerSec
  const ratios: Partial<Record<WorkloadName, number>> = {}
  for (const w of workloads) {
    const [t, e] = [tput(w.name, 'tideline'), tput(w.name, 'etcd')]
    if (t !== undefined && e !== undefined) ratios[w.name] = t / e
  }
  return { etcdVersion, clients: o.clients, seconds: o.seconds, warmupMs: WARMUP_MS, clientNodes: o.clientNodes, voters: o.voters, rows, ratios }
}

async function runTideline (w: Workload, o: VsEtcdOptions): Promise<VsEtcdRow> {
  const group = await startLocalGroup({ relays: o.voters, groupId: `vs-etcd-${w.name}`, procedures: PROCEDURES })
  const nodes: NetClient[] = []
  try {
    for (let i = 0; i < o.clientNodes; i++) {
      nodes.push(await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 20_000 }))
    }
    const node = (c: number): NetClient => nodes[c % nodes.length] as NetClient
    const appends = new AppendLedger()
    const call = async (c: number, n: number, procedure: string, args: Value): Promise<OpOutcome> => {
      const r = await node(c).call({ clientTxnId: `${w.name}-${c}-${n}`, procedure, hash: hashOf(procedure), args })
      return { committed: r.status === 'committed', retries: 0 }
    }
    const ops: Record<Workload['kind'], (c: number, n: number) => Promise<OpOutcome>> = {
      put: async (c, n) => call(c, n, 'put', { k: putKey(c, n), v: `v${n}` }),
      transfer: async (c, n) => {
        const [from, to] = pickPair(w.keys)
        return call(c, n, 'transfer', { from: accountKey('', from), to: accountKey('', to), amount: 1 })
      },
      read: async c => {
        const [a, b] = pickPair(w.keys)
        await node(c).read([accountKey('', a), accountKey('', b)], 'strict')
        return { committed: true, retries: 0 }
      },
      append: async (c, n) => {
        const v = `c${c}-${n}`
        return appends.track(v, async () => call(c, n, 'append', { k: listKey('', randomKey(w.keys)), v }))
      }
    }
    const probe = async (): Promise<Record<string, number>> => {
      const sum = await scrapeAll(group.relays.map(r => r.httpUrl))
      return { bytes: sum('tideline_bytes_total{dir="out"}') + sum('tideline_bytes_total{dir="gossip-out"}'), messages: sum('tideline_messages_total'), frames: sum('tideline_frames_total{dir="out"}'), gossip: sum('tideline_gossip_messages_total') }
    }
    const r = await closedLoop({ clients: o.clients, seconds: o.seconds, warmupMs: WARMUP_MS, op: ops[w.kind], serverPids: group.relays.map(x => x.pid), probe })
    const completed = r.committed + r.aborted
    const peak = Math.max(...await Promise.all(group.relays.map(async x => peakRssMiB(x.pid))))
    const row: VsEtcdRow = {
      workload: w.name,
      system: 'tideline',
      ...r,
      bytesPerTxn: (r.probed.bytes ?? Number.NaN) / completed,
      messagesPerTxn: (r.probed.messages ?? Number.NaN) / completed,
      framesPerTxn: (r.probed.frames ?? Number.NaN) / completed,
      gossipPerSec: (r.probed.gossip ?? Number.NaN) / o.seconds,
      peakRssMiB: peak
    }
    const reader = nodes[0] as NetClient
    if (w.kind === 'transfer') {
      // Strict reads of every account, in chunks.
      const keys = Array.from({ length: w.keys }, (_, i) => accountKey('', i))
      let sum = 0
      for (let i = 0; i < keys.length; i += 500) {
        const chunk = keys.slice(i, i + 500)
        const read = await reader.read(chunk, 'strict')
        for (const k of chunk) sum += (read.values[k] as number | undefined) ?? INITIAL_BALANCE
      }
      return { ...row, conserved: sum === w.keys * INITIAL_BALANCE }
    }
    if (w.kind === 'append') {
      const keys = Array.from({ length: w.keys }, (_, i) => listKey('', i))
      const read = await reader.read(keys, 'strict')
      const lists = keys.map(k => (read.values[k] as string[] | undefined) ?? [])
      return { ...row, conserved: appends.conserved(lists) }
    }
    return row
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await group.stop().catch(() => {})
  }
}

/** The run with the median throughput (the lower middle one of an even count). */
function medianRun (runs: readonly VsEtcdRow[]): VsEtcdRow | undefined {
  return [...runs].sort((a, b) => a.txnPerSec - b.txnPerSec)[Math.floor((runs.length - 1) / 2)]
}

/**
 * One transfer as an etcd transaction: read both balances and their mod
 * revisions in one (linearizable) txn, then a txn that writes both new
 * balances if neither revision moved, again from the read on conflict.
 */
async function etcdTransfer (client: Etcd3, a: string, b: string): Promise<OpOutcome> {
  for (let retries = 0; ; retries++) {
    const read = await client.kv.txn({ success: [{ request_range: { key: Buffer.from(a) } }, { request_range: { key: Buffer.from(b) } }] })
    const kvA = read.responses[0]?.response_range.kvs[0]
    const kvB = read.responses[1]?.response_range.kvs[0]
    const from = kvA === undefined ? INITIAL_BALANCE : Number(kvA.value.toString())
    const to = kvB === undefined ? INITIAL_BALANCE : Number(kvB.value.toString())
    if (from < 1) return { committed: false, retries }
    const w = await client
      .if(a, 'Mod', '==', kvA?.mod_revision ?? 0)
      .and(b, 'Mod', '==', kvB?.mod_revision ?? 0)
      .then(client.put(a).value(String(from - 1)), client.put(b).value(String(to + 1)))
      .commit()
    if (w.succeeded) return { committed: true, retries }
  }
}

/** One append as an etcd transaction: read the list and its mod revision, write it longer if the revision did not move, else again. */
async function etcdAppend (client: Etcd3, key: string, v: string): Promise<OpOutcome> {
  for (let retries = 0; ; retries++) {
    const read = await client.kv.txn({ success: [{ request_range: { key: Buffer.from(key) } }] })
    const kv = read.responses[0]?.response_range.kvs[0]
    const list = kv === undefined ? [] : JSON.parse(kv.value.toString()) as string[]
    const w = await client
      .if(key, 'Mod', '==', kv?.mod_revision ?? 0)
      .then(client.put(key).value(JSON.stringify([...list, v])))
      .commit()
    if (w.succeeded) return { committed: true, retries }
  }
}

/** One measured run; the cluster lives across runs, so each run (`run`) has keys of its own, as each Tideline run has a fresh group. */
async function runEtcd (cluster: EtcdCluster, w: Workload, o: VsEtcdOptions, run: number): Promise<VsEtcdRow> {
  // Each client channel talks to one member, round robin, as Tideline clients spread over voters.
  const clients = Array.from({ length: o.clientNodes }, (_, i) => new Etcd3({ hosts: (cluster.members[i % cluster.members.length] as { clientUrl: string }).clientUrl }))
  try {
    const client = (c: number): Etcd3 => clients[c % clients.length] as Etcd3
    const prefix = `${w.name}/r${run}/`
    const appends = new AppendLedger()
    const ops: Record<Workload['kind'], (c: number, n: number) => Promise<OpOutcome>> = {
      put: async (c, n) => {
        await client(c).put(`${prefix}${putKey(c, n)}`).value(`v${n}`).exec()
        return { committed: true, retries: 0 }
      },
      transfer: async c => {
        const [from, to] = pickPair(w.keys)
        return etcdTransfer(client(c), accountKey(prefix, from), accountKey(prefix, to))
      },
      // Linearizable (the default, not serializable) reads of two keys in one txn, like Tideline's strict read of two keys.
      read: async c => {
        const [a, b] = pickPair(w.keys)
        await client(c).kv.txn({ success: [{ request_range: { key: Buffer.from(accountKey(prefix, a)) } }, { request_range: { key: Buffer.from(accountKey(prefix, b)) } }] })
        return { committed: true, retries: 0 }
      },
      append: async (c, n) => {
        const v = `c${c}-${n}`
        return appends.track(v, async () => etcdAppend(client(c), listKey(prefix, randomKey(w.keys)), v))
      }
    }
    const probe = async (): Promise<Record<string, number>> => {
      const sum = await scrapeAll(cluster.members.map(m => m.clientUrl))
      return { bytes: sum('etcd_network_client_grpc_sent_bytes_total') + sum('etcd_network_peer_sent_bytes_total') }
    }
    const r = await closedLoop({ clients: o.clients, seconds: o.seconds, warmupMs: WARMUP_MS, op: ops[w.kind], serverPids: cluster.members.map(m => m.pid), probe })
    const peak = Math.max(...await Promise.all(cluster.members.map(async m => peakRssMiB(m.pid))))
    const row: VsEtcdRow = { workload: w.name, system: 'etcd', ...r, bytesPerTxn: (r.probed.bytes ?? Number.NaN) / (r.committed + r.aborted), peakRssMiB: peak }
    if (w.kind === 'transfer') {
      const all = await (clients[0] as Etcd3).getAll().prefix(`${prefix}acct/`).strings()
      const written = Object.values(all)
      const sum = written.reduce((s, v) => s + Number(v), 0) + (w.keys - written.length) * INITIAL_BALANCE
      return { ...row, conserved: sum === w.keys * INITIAL_BALANCE }
    }
    if (w.kind === 'append') {
      const all = await (clients[0] as Etcd3).getAll().prefix(`${prefix}list/`).strings()
      return { ...row, conserved: appends.conserved(Object.values(all).map(x => JSON.parse(x) as string[])) }
    }
    return row
  } finally {
    for (const c of clients) c.close()
  }
}
