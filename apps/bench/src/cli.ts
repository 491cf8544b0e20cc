import { benchCore, benchCoreThreaded } from './core.js'

/**
 * `pnpm bench <workload> [--clients C] [--voters V] [--seconds S] [--accounts A]`
 * Benchmarks print a table and end with one summary line.
 */
function option (args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return fallback
  const v = Number(args[i + 1])
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} takes a positive number`)
  return v
}

async function main (): Promise<number> {
  const args = process.argv.slice(2).filter(a => a !== '--')
  const workload = args[0]
  if (workload === 'core') {
    const voters = option(args, 'voters', 3)
    const clients = option(args, 'clients', 512)
    const seconds = option(args, 'seconds', 5)
    const accounts = option(args, 'accounts', 10_000)
    process.stdout.write(`core: ${voters} voters in one process, zero delay, MemoryStore, ${clients} closed-loop clients, 2-key transfers over ${accounts} accounts, ${seconds} s per mode\n`)
    const single = await benchCore({ voters, clients, seconds, accounts })
    const threaded = await benchCoreThreaded({ voters, clients, seconds, accounts })
    process.stdout.write(`| mode | txn/s | committed | aborted | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n`)
    for (const [mode, r] of [['one thread', single], ['thread per voter', threaded]] as const) {
      process.stdout.write(`| ${mode} | ${r.txnPerSec.toFixed(0)} | ${r.committed} | ${r.aborted} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} |\n`)
    }
    process.stdout.write(`threaded/one-thread ratio ${(threaded.txnPerSec / single.txnPerSec).toFixed(2)}\n`)
    process.stdout.write(`core: ${Math.round(single.txnPerSec)} txn/s\n`)
    return 0
  }
  process.stderr.write(`unknown workload ${JSON.stringify(workload)}; available: core\n`)
  return 2
}

process.exitCode = await main()
