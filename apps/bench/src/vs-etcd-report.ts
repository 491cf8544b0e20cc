import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { VsEtcdResult, VsEtcdRow, WorkloadName } from './vs-etcd.js'

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-')
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-')

const f0 = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(0) : '-')

/** The side-by-side table, one row per workload and system. */
export function markdownTable (r: VsEtcdResult): string {
  // With repeated runs the row is the median run's, and the last column lists every run's throughput.
  const repeated = r.rows.some(x => x.runs !== undefined)
  const head = `| workload | system | txn/s | committed | aborted | failed | conflict retries | p50 ms | p95 ms | p99 ms | server CPU ms/txn | client CPU ms/txn | bytes/txn | msgs/txn | gossip msgs/s | peak RSS MiB | checked |${repeated ? ' txn/s of every run |' : ''}\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|${repeated ? '---|' : ''}\n`
  const row = (x: VsEtcdRow): string => `| ${x.workload} | ${x.system} | ${x.txnPerSec.toFixed(0)} | ${x.committed} | ${x.aborted} | ${x.failed} | ${x.system === 'etcd' ? x.retries : '-'} | ${f1(x.p50Ms)} | ${f1(x.p95Ms)} | ${f1(x.p99Ms)} | ${f2(x.serverCpuMsPerTxn)} | ${f2(x.clientCpuMsPerTxn)} | ${f0(x.bytesPerTxn)} | ${x.messagesPerTxn === undefined ? '-' : f1(x.messagesPerTxn)} | ${f0(x.gossipPerSec)} | ${f0(x.peakRssMiB)} | ${x.conserved === undefined ? '-' : x.conserved ? 'yes' : 'NO'} |${repeated ? ` ${(x.runs ?? []).map(f0).join(', ')} |` : ''}\n`
  const order = [...r.rows].sort((a, b) => WORKLOAD_ORDER.indexOf(a.workload) - WORKLOAD_ORDER.indexOf(b.workload) || (a.system === 'tideline' ? -1 : 1))
  return head + order.map(row).join('')
}

const WORKLOAD_ORDER: readonly WorkloadName[] = ['transfers-hot', 'transfers-cold', 'puts', 'strict-reads', 'list-append']
const ratio = (r: VsEtcdResult, w: WorkloadName): string => {
  const x = r.ratios[w]
  return x === undefined ? '-' : `${x.toFixed(2)}x`
}

/** Ratios of the workloads beyond the three the summary line names. */
export function otherRatios (r: VsEtcdResult): string {
  return `other ratios: strict-reads ${ratio(r, 'strict-reads')}, list-append ${ratio(r, 'list-append')}`
}

export function summaryLine (r: VsEtcdResult): string {
  return `vs-etcd: transfers-hot ${ratio(r, 'transfers-hot')}, transfers-cold ${ratio(r, 'transfers-cold')}, puts ${ratio(r, 'puts')}`
}

/** Grouped bars: throughput per workload, Tideline beside etcd. */
export function svgChart (r: VsEtcdResult): string {
  const W = 820
  const H = 320
  const left = 60
  const bottom = 260
  const top = 40
  const max = Math.max(1, ...r.rows.map(x => x.txnPerSec))
  const scale = (v: number): number => ((bottom - top) * v) / max
  const groupW = (W - left - 20) / WORKLOAD_ORDER.length
  const colors = { tideline: '#1f6feb', etcd: '#8b949e' } as const
  const parts: string[] = []
  WORKLOAD_ORDER.forEach((w, g) => {
    const x0 = left + g * groupW + groupW * 0.15
    const barW = groupW * 0.3;
    (['tideline', 'etcd'] as const).forEach((s, k) => {
      const v = r.rows.find(x => x.workload === w && x.system === s)?.txnPerSec ?? 0
      const x = x0 + k * barW
      const h = scale(v)
      parts.push(`<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${colors[s]}"/>`)
      parts.push(`<text x="${(x + barW / 2 - 2).toFixed(1)}" y="${(bottom - h - 4).toFixed(1)}" text-anchor="middle" font-size="11">${v.toFixed(0)}</text>`)
    })
    parts.push(`<text x="${(x0 + barW).toFixed(1)}" y="${bottom + 18}" text-anchor="middle" font-size="11">${w} (${ratio(r, w)})</text>`)
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle" font-size="12">Tideline vs etcd ${r.etcdVersion}: completed txn/s, ${r.clients} closed-loop clients, ${r.voters} members on loopback</text>
<line x1="${left}" y1="${bottom}" x2="${W - 10}" y2="${bottom}" stroke="black"/>
${parts.join('\n')}
<rect x="${left}" y="${H - 30}" width="12" height="12" fill="${colors.tideline}"/><text x="${left + 16}" y="${H - 20}" font-size="12">Tideline (${r.voters} tideline-relay processes)</text>
<rect x="${left + 260}" y="${H - 30}" width="12" height="12" fill="${colors.etcd}"/><text x="${left + 276}" y="${H - 20}" font-size="12">etcd (${r.voters} members)</text>
</svg>
`
}

/** docs/bench/vs-etcd.{json,md,svg} */
export async function writeReport (r: VsEtcdResult, setting: string): Promise<string> {
  const dir = join(import.meta.dirname, '..', '..', '..', 'docs', 'bench')
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'vs-etcd.json'), JSON.stringify({ date: new Date().toISOString(), setting, ...r }, null, 2) + '\n')
  await writeFile(join(dir, 'vs-etcd.md'), `# Tideline vs etcd\n\n${setting}\n\n${markdownTable(r)}\n${otherRatios(r)}\n\n${summaryLine(r)}\n\n![throughput](vs-etcd.svg)\n`)
  await writeFile(join(dir, 'vs-etcd.svg'), svgChart(r))
  return dir
}
