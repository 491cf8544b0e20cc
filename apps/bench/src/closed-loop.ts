import { readFile } from 'node:fs/promises'

/** What one operation came to: a commit or an abort (both complete a transaction), and how many conflict retries it took. */
export interface OpOutcome {
  readonly committed: boolean
  readonly retries: number
}

export interface ClosedLoopInit {
  readonly clients: number
  /** Measured window. */
  readonly seconds: number
  /** Operations that start before this much time has passed are not counted. */
  readonly warmupMs: number
  /** One transaction by client `c`, its `n`th. */
  readonly op: (c: number, n: number) => Promise<OpOutcome>
  /** Server processes whose CPU time over the measured window is reported. */
  readonly serverPids: ReadonlyArray<number | undefined>
  /** Counters read at the start and the end of the measured window; their differences are reported. */
  readonly probe?: () => Promise<Record<string, number>>
}

export interface ClosedLoopResult {
  readonly txnPerSec: number
  readonly committed: number
  readonly aborted: number
  readonly failed: number
  readonly retries: number
  readonly p50Ms: number
  readonly p95Ms: number
  readonly p99Ms: number
  /** Server CPU (user+sys, every server process) per completed transaction over the measured window. */
  readonly serverCpuMsPerTxn: number
  /** This process's CPU (the clients) per completed transaction over the measured window. */
  readonly clientCpuMsPerTxn: number
  /** How much each `probe` counter grew over the measured window. */
  readonly probed: Record<string, number>
  readonly firstError?: string
}

export function quantile (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

/** User+system CPU time a process has used so far (Linux /proc). */
export async function processCpuMs (pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
    return (Number(fields[11]) + Number(fields[12])) * 10 // clock ticks of 10 ms
  } catch {
    return Number.NaN
  }
}

/** The most resident memory a process has had (Linux /proc VmHWM), in MiB. */
export async function peakRssMiB (pid: number | undefined): Promise<number> {
  return statusMiB(pid, 'VmHWM')
}

/** The resident memory a process has now (Linux /proc VmRSS), in MiB. */
export async function rssMiB (pid: number | undefined): Promise<number> {
  return statusMiB(pid, 'VmRSS')
}

async function statusMiB (pid: number | undefined, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  if (pid === undefined) return Number.NaN
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile(`/proc/${pid}/status`, 'utf8'))
    return m === null ? Number.NaN : Number(m[1]) / 1024
  } catch {
    return Number.NaN
  }
}

async function serverCpuMs (pids: ReadonlyArray<number | undefined>): Promise<number> {
  const each = await Promise.all(pids.map(processCpuMs))
  return each.reduce((a, b) => a + b, 0)
}

function ownCpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/**
 * `clients` closed-loop clients, each issuing its next operation when the
 * last one completed. Counted: operations that start in the measured window
 * and complete before it ends (a transaction completes when it commits or
 * aborts; conflict retries are inside one operation and its latency).
 */
export async function closedLoop (o: ClosedLoopInit): Promise<ClosedLoopResult> {
  const latencies: number[] = []
  let committed = 0
  let aborted = 0
  let failed = 0
  let retries = 0
  let firstError: string | undefined
  const t0 = performance.now()
  const measureFrom = t0 + o.warmupMs
  const end = measureFrom + o.seconds * 1000
  const cpuAt = async (ms: number): Promise<{ server: number, own: number, probe: Record<string, number> }> => {
    await new Promise(resolve => setTimeout(resolve, Math.max(0, ms - performance.now())))
    const [server, probe] = await Promise.all([serverCpuMs(o.serverPids), o.probe?.() ?? {}])
    return { own: ownCpuMs(), server, probe }
  }
  const cpuStart = cpuAt(measureFrom)
  const cpuEnd = cpuAt(end)
  await Promise.all(Array.from({ length: o.clients }, async (_, c) => {
    let n = 0
    while (performance.now() < end) {
      const start = performance.now()
      try {
        const r = await o.op(c, n++)
        const done = performance.now()
        if (start >= measureFrom && done <= end) {
          latencies.push(done - start)
          retries += r.retries
          if (r.committed) committed++
          else aborted++
        }
      } catch (err) {
        if (start >= measureFrom) failed++
        firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err)
      }
    }
  }))
  const [a, b] = await Promise.all([cpuStart, cpuEnd])
  latencies.sort((x, y) => x - y)
  const completed = committed + aborted
  const probed = Object.fromEntries(Object.entries(b.probe).map(([k, v]) => [k, v - (a.probe[k] ?? 0)]))
  return {
    txnPerSec: completed / o.seconds,
    committed,
    aborted,
    failed,
    retries,
    p50Ms: quantile(latencies, 0.5),
    p95Ms: quantile(latencies, 0.95),
    p99Ms: quantile(latencies, 0.99),
    serverCpuMsPerTxn: (b.server - a.server) / completed,
    clientCpuMsPerTxn: (b.own - a.own) / completed,
    probed,
    ...(firstError === undefined ? {} : { firstError })
  }
}
