import '@tideline/net-libp2p'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createRegistry } from '@tideline/core'
import { NetClient } from '@tideline/net-libp2p'
import { startLocalGroup } from '@tideline/relay'
import { Etcd3 } from 'etcd3'
import { closedLoop, type ClosedLoopResult, type OpOutcome } from './closed-loop.js'
import { ensureEtcd, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js'
import { INITIAL_BALANCE, procedures } from './vs-etcd-procedures.js'

export type WorkloadName = 'transfers-hot' | 'transfers-cold' | 'puts'
export type SystemName = 'tideline' | 'etcd'

interface Workload {
  readonly name: WorkloadName
  /** Accounts the transfers pick from; undefined for puts. */
  readonly accounts?: number
}

export const WORKLOADS: readonly Workload[] = [
  { name: 'transfers-hot', accounts: 10 },
  { name: 'transfers-cold', accounts: 10_000 },
  { name: 'puts' }
]

export interface VsEtcdOptions {
  readonly clients: number
  readonly seconds: number
  /** libp2p client peers (Tideline) and etcd3 clients (gRPC channels) the closed-loop clients share. */
  readonly clientNodes: number
  readonly log: (line: string) => void
}

export interface VsEtcdRow extends ClosedLoopResult {
  readonly workload: WorkloadName
  readonly system: SystemName
  /** Transfers only: every account's balance summed after the run equals accounts × 100. */
  readonly conserved?: boolean
}

export interface VsEtcdResult {
  readonly etcdVersion: string
  readonly clients: number
  readonly seconds: number
  readonly warmupMs: number
  readonly clientNodes: number
  readonly rows: readonly VsEtcdRow[]
  /** Tideline throughput / etcd throughput per workload. */
  readonly ratios: Readonly<Record<WorkloadName, number>>
}

const WARMUP_MS = 2_000
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

const putKey = (c: number, n: number): string => `put/c${c}/k${n % 1000}`
const accountKey = (prefix: string, i: number): string => `${prefix}acct/a${i}`

/**
 * `pnpm bench vs-etcd`: each workload against a fresh group of three
 * `tideline-relay` processes and against a 3-member etcd cluster, same
 * clients, same warm-up and measured window, one system at a time.
 */
export async function benchVsEtcd (o: VsEtcdOptions): Promise<VsEtcdResult> {
  const etcdVersion = await ensureEtcd(o.log)
  const rows: VsEtcdRow[] = []
  const cluster = await startEtcdCluster()
  try {
    for (const w of WORKLOADS) {
      const r = await runEtcd(cluster, w, o)
      o.log(`etcd ${w.name}: ${r.txnPerSec.toFixed(0)} txn/s, p50 ${r.p50Ms.toFixed(1)} ms, ${r.retries} conflict retries${r.failed > 0 ? `, ${r.failed} failed (${r.firstError ?? ''})` : ''}`)
      rows.push(r)
    }
  } finally {
    await cluster.stop()
  }
  for (const w of WORKLOADS) {
    const r = await runTideline(w, o)
    o.log(`tideline ${w.name}: ${r.txnPerSec.toFixed(0)} txn/s, p50 ${r.p50Ms.toFixed(1)} ms${r.failed > 0 ? `, ${r.failed} failed (${r.firstError ?? ''})` : ''}`)
    rows.push(r)
  }
  const tput = (w: WorkloadName, s: SystemName): number => rows.find(r => r.workload === w && r.system === s)?.txnPerSec ?? Number.NaN
  const ratios = Object.fromEntries(WORKLOADS.map(w => [w.name, tput(w.name, 'tideline') / tput(w.name, 'etcd')])) as Record<WorkloadName, number>
  return { etcdVersion, clients: o.clients, seconds: o.seconds, warmupMs: WARMUP_MS, clientNodes: o.clientNodes, rows, ratios }
}

async function runTideline (w: Workload, o: VsEtcdOptions): Promise<VsEtcdRow> {
  const group = await startLocalGroup({ relays: 3, groupId: `vs-etcd-${w.name}`, procedures: PROCEDURES })
  const nodes: NetClient[] = []
  try {
    for (let i = 0; i < o.clientNodes; i++) {
      nodes.push(await NetClient.start({ privateKey: await generateKeyPair('Ed25519'), voters: group.relays.map(r => r.tcp), invite: group.invite, creator: group.creatorId, attemptTimeoutMs: 5_000, timeoutMs: 20_000 }))
    }
    const node = (c: number): NetClient => nodes[c % nodes.length] as NetClient
    const accounts = w.accounts
    const op = accounts === undefined
      ? async (c: number, n: number): Promise<OpOutcome> => {
        const r = await node(c).call({ clientTxnId: `${w.name}-${c}-${n}`, procedure: 'put', hash: hashOf('put'), args: { k: putKey(c, n), v: `v${n}` } })
        return { committed: r.status === 'committed', retries: 0 }
      }
      : async (c: number, n: number): Promise<OpOutcome> => {
        const [from, to] = pickPair(accounts)
        const r = await node(c).call({ clientTxnId: `${w.name}-${c}-${n}`, procedure: 'transfer', hash: hashOf('transfer'), args: { from: accountKey('', from), to: accountKey('', to), amount: 1 } })
        return { committed: r.status === 'committed', retries: 0 }
      }
    const r = await closedLoop({ clients: o.clients, seconds: o.seconds, warmupMs: WARMUP_MS, op, serverPids: group.relays.map(x => x.pid) })
    if (accounts === undefined) return { workload: w.name, system: 'tideline', ...r }
    // Strict reads of every account, in chunks.
    const keys = Array.from({ length: accounts }, (_, i) => accountKey('', i))
    let sum = 0
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500)
      const read = await (nodes[0] as NetClient).read(chunk, 'strict')
      for (const k of chunk) sum += (read.values[k] as number | undefined) ?? INITIAL_BALANCE
    }
    return { workload: w.name, system: 'tideline', ...r, conserved: sum === accounts * INITIAL_BALANCE }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await group.stop().catch(() => {})
  }
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

async function runEtcd (cluster: EtcdCluster, w: Workload, o: VsEtcdOptions): Promise<VsEtcdRow> {
  // Each client channel talks to one member, round robin, as Tideline clients spread over voters.
  const clients = Array.from({ length: o.clientNodes }, (_, i) => new Etcd3({ hosts: (cluster.members[i % cluster.members.length] as { clientUrl: string }).clientUrl }))
  try {
    const client = (c: number): Etcd3 => clients[c % clients.length] as Etcd3
    const accounts = w.accounts
    const prefix = `${w.name}/`
    const op = accounts === undefined
      ? async (c: number, n: number): Promise<OpOutcome> => {
        await client(c).put(`${prefix}${putKey(c, n)}`).value(`v${n}`).exec()
        return { committed: true, retries: 0 }
      }
      : async (c: number): Promise<OpOutcome> => {
        const [from, to] = pickPair(accounts)
        return etcdTransfer(client(c), accountKey(prefix, from), accountKey(prefix, to))
      }
    const r = await closedLoop({ clients: o.clients, seconds: o.seconds, warmupMs: WARMUP_MS, op, serverPids: cluster.members.map(m => m.pid) })
    if (accounts === undefined) return { workload: w.name, system: 'etcd', ...r }
    const all = await (clients[0] as Etcd3).getAll().prefix(`${prefix}acct/`).strings()
    const written = Object.values(all)
    const sum = written.reduce((s, v) => s + Number(v), 0) + (accounts - written.length) * INITIAL_BALANCE
    return { workload: w.name, system: 'etcd', ...r, conserved: sum === accounts * INITIAL_BALANCE }
  } finally {
    for (const c of clients) c.close()
  }
}
