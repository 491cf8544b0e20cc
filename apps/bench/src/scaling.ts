import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { benchVsEtcd, type VsEtcdRow } from './vs-etcd.js'

export interface ScalingOptions {
  readonly clients: number
  readonly seconds: number
  readonly clientNodes: number
  readonly voterCounts: readonly number[]
  /** Runs per size and system, alternating systems; the median run is reported. @default 1 */
  readonly repeat?: number
  readonly log: (line: string) => void
}

export interface ScalingPoint {
  readonly voters: number
  readonly tideline: VsEtcdRow
  readonly etcd: VsEtcdRow
}

export interface ScalingResult extends Omit<ScalingOptions, 'log'> {
  readonly points: readonly ScalingPoint[]
}

/**
 * `pnpm bench scaling`: cold transfers against Tideline groups of 3, 5 and 7
 * relay processes (all voters) and etcd clusters of as many members, one
 * after another on this machine.
 */
export async function benchScaling (o: ScalingOptions): Promise<ScalingResult> {
  const points: ScalingPoint[] = []
  for (const voters of o.voterCounts) {
    const r = await benchVsEtcd({ clients: o.clients, seconds: o.seconds, clientNodes: o.clientNodes, voters, only: ['transfers-cold'], repeat: o.repeat ?? 1, log: o.log })
    const row = (s: 'tideline' | 'etcd'): VsEtcdRow => {
      const x = r.rows.find(y => y.system === s)
      if (x === undefined) throw new Error(`no ${s} row for ${voters} voters`)
      return x
    }
    points.push({ voters, tideline: row('tideline'), etcd: row('etcd') })
  }
  return { clients: o.clients, seconds: o.seconds, clientNodes: o.clientNodes, voterCounts: o.voterCounts, points }
}

const f = (x: number | undefined, d: number): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(d) : '-')

export function scalingTable (r: ScalingResult): string {
  const head = '| voters | Tideline txn/s | p50 ms | p99 ms | gossip msgs/s | msgs/txn | bytes/txn | relay CPU ms/txn | peak RSS MiB | etcd txn/s | etcd p50 ms | etcd p99 ms | Tideline/etcd |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
  return head + r.points.map(p => `| ${p.voters} | ${f(p.tideline.txnPerSec, 0)} | ${f(p.tideline.p50Ms, 1)} | ${f(p.tideline.p99Ms, 1)} | ${f(p.tideline.gossipPerSec, 0)} | ${f(p.tideline.messagesPerTxn, 1)} | ${f(p.tideline.bytesPerTxn, 0)} | ${f(p.tideline.serverCpuMsPerTxn, 2)} | ${f(p.tideline.peakRssMiB, 0)} | ${f(p.etcd.txnPerSec, 0)} | ${f(p.etcd.p50Ms, 1)} | ${f(p.etcd.p99Ms, 1)} | ${f(p.tideline.txnPerSec / p.etcd.txnPerSec, 2)}x |\n`).join('')
}

export function scalingLine (r: ScalingResult): string {
  return `scaling: ${r.points.map(p => `${p.voters} voters ${p.tideline.txnPerSec.toFixed(0)} txn/s (etcd ${p.etcd.txnPerSec.toFixed(0)})`).join(', ')}`
}

/** docs/bench/scaling.{json,md} */
export async function writeScalingReport (r: ScalingResult): Promise<string> {
  const dir = join(import.meta.dirname, '..', '..', '..', 'docs', 'bench')
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'scaling.json'), JSON.stringify({ date: new Date().toISOString(), ...r }, null, 2) + '\n')
  await writeFile(join(dir, 'scaling.md'), `# Scaling with voters\n\nCold transfers (2 random accounts of 10,000), ${r.clients} closed-loop clients on ${r.clientNodes} client connections, ${r.seconds} s measured after 2 s warm-up, every process on one 2-core machine, etcd and Tideline run by run for each size. Tideline: that many tideline-relay processes, all voters; etcd: that many members.\n\n${scalingTable(r)}\n${scalingLine(r)}\n`)
  return dir
}
