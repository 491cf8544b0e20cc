import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from '@tideline/test-kit'

const execFileAsync = promisify(execFile)

async function etcdVersion (): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('etcd', ['--version'])
    return /etcd Version: (\S+)/.exec(stdout)?.[1] ?? stdout.trim()
  } catch {
    return undefined
  }
}

/**
 * The `etcd` binary's version, installing Debian's `etcd-server` first when
 * it is missing and we are root. Anyone else gets told what to install.
 */
export async function ensureEtcd (log: (line: string) => void): Promise<string> {
  const found = await etcdVersion()
  if (found !== undefined) return found
  if (process.getuid?.() !== 0) {
    throw new Error('etcd is not on PATH; install it first (Debian: sudo apt-get install -y etcd-server), or run the benchmark as root to let it install etcd-server')
  }
  log('etcd is not on PATH: apt-get install -y etcd-server')
  const install = async (): Promise<void> => { await execFileAsync('apt-get', ['install', '-y', 'etcd-server'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }) }
  try {
    await install()
  } catch {
    // A fresh image has no package lists yet.
    await execFileAsync('apt-get', ['update'])
    await install()
  }
  const v = await etcdVersion()
  if (v === undefined) throw new Error('apt-get installed etcd-server but `etcd` is still not on PATH')
  return v
}

export interface EtcdMember {
  readonly name: string
  readonly clientUrl: string
  readonly pid: number | undefined
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[]
  readonly dir: string
  /** Stops every member and removes the data directories. */
  stop(): Promise<void>
}

export interface EtcdClusterInit {
  /** @default 3 */
  readonly members?: number
  /** @default 30_000 */
  readonly startTimeoutMs?: number
}

/**
 * Each member runs under `sh`, which kills it (SIGKILL: the data is thrown away, and a
 * graceful stop waits seconds for absent peers) when our end of the shell's
 * stdin closes: that happens however this process ends (an error, Ctrl-C,
 * `kill -9`), so no etcd outlives the benchmark.
 */
const SUPERVISOR = 'etcd "$@" & pid=$!; cat >/dev/null; kill -KILL $pid 2>/dev/null; wait $pid'

/** The pid of the shell's one `etcd` child (for CPU accounting). */
async function childEtcdPid (shellPid: number | undefined): Promise<number | undefined> {
  if (shellPid === undefined) return undefined
  try {
    const children = (await readFile(`/proc/${shellPid}/task/${shellPid}/children`, 'utf8')).trim().split(/\s+/).map(Number)
    for (const pid of children) {
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim()
      if (comm === 'etcd') return pid
    }
  } catch {
    // not Linux, or gone
  }
  return undefined
}

async function healthy (clientUrl: string): Promise<boolean> {
  try {
    const r = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) })
    const body = await r.json() as { health?: string }
    return body.health === 'true'
  } catch {
    return false
  }
}

/**
 * A fresh etcd cluster on loopback: free ports, data directories in a
 * temporary directory, default durability (every commit fsynced, as
 * Tideline's strict batches are). Resolves once every member reports healthy.
 */
export async function startEtcdCluster (init: EtcdClusterInit = {}): Promise<EtcdCluster> {
  const n = init.members ?? 3
  const dir = await mkdtemp(join(tmpdir(), 'tideline-etcd-'))
  const ports = await Promise.all(Array.from({ length: 2 * n }, async () => freePort()))
  const names = Array.from({ length: n }, (_, i) => `m${i}`)
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[n + i]}`
  const clientUrl = (i: number): string => `http://127.0.0.1:${ports[i]}`
  const initialCluster = names.map((name, i) => `${name}=${peerUrl(i)}`).join(',')
  const children: ChildProcess[] = []
  const logs: string[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async c => {
      if (c.exitCode !== null || c.signalCode !== null) return
      await new Promise<void>(resolve => {
        c.once('exit', () => { resolve() })
        c.stdin?.end()
      })
    }))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < n; i++) {
      const args = [
        '--name', names[i] as string,
        '--data-dir', join(dir, names[i] as string),
        '--listen-client-urls', clientUrl(i),
        '--advertise-client-urls', clientUrl(i),
        '--listen-peer-urls', peerUrl(i),
        '--initial-advertise-peer-urls', peerUrl(i),
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `bench-${process.pid}`,
        '--logger', 'zap',
        '--log-level', 'warn'
      ]
      const child = spawn('sh', ['-c', SUPERVISOR, 'sh', ...args], { stdio: ['pipe', 'ignore', 'pipe'] })
      child.stderr?.on('data', (d: Buffer) => {
        logs.push(`${names[i]}: ${d.toString().trimEnd()}`)
        if (logs.length > 200) logs.splice(0, 100)
      })
      children.push(child)
    }
    const deadline = Date.now() + (init.startTimeoutMs ?? 30_000)
    for (let i = 0; i < n; i++) {
      while (!(await healthy(clientUrl(i)))) {
        if (Date.now() > deadline) throw new Error(`etcd member ${names[i]} not healthy within ${init.startTimeoutMs ?? 30_000} ms:\n${logs.slice(-20).join('\n')}`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
    const pids = await Promise.all(children.map(async c => childEtcdPid(c.pid)))
    return {
      members: names.map((name, i) => ({ name, clientUrl: clientUrl(i), pid: pids[i] })),
      dir,
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}
