import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { NetClient, createGenesis, createInvite, encodeSigned, type MemberRole, type SignedGenesis, type SignedInvite } from '@tideline/net-libp2p'
import type { PartitionSpec } from '@tideline/core'
import { createRequire } from 'node:module'
import { loadOrCreateIdentity, loadRegistry, nodeDecisionSigner } from '@tideline/relay'

const execFileAsync = promisify(execFile)

/** The relay CLI's source: the processes run it under tsx with the workspace's source condition. */
const CLI = join(dirname(createRequire(import.meta.url).resolve('@tideline/relay/package.json')), 'src', 'cli.ts')

/** A free TCP port on loopback (bound once and released; the caller's server binds it again at once). */
export async function freePort (): Promise<number> {
  // Below Linux's ephemeral range (32768 and up): a port the kernel picks there can be taken by some
  // process's outgoing connection before the relay binds it (seen as EADDRINUSE in a bench run beside
  // an etcd cluster). Random tries first, then whatever the kernel gives. Each Vitest worker has its own
  // part of the range: two workers starting groups at once (or one restarting a relay on its old port
  // while the other picks) never pick the same port.
  const worker = Number.parseInt(process.env.VITEST_POOL_ID ?? '', 10)
  const [from, span] = Number.isInteger(worker) && worker > 0 ? [20_000 + ((worker - 1) % 4) * 3_000, 3_000] : [20_000, 12_000]
  for (let i = 0; i < 20; i++) {
    const port = from + Math.floor(Math.random() * span)
    if (await bind(port) !== undefined) return port
  }
  return await bind(0) ?? 0
}

/** Binds `port` on loopback and releases it: the port bound (0 picks one), or undefined when it is taken. */
async function bind (port: number): Promise<number | undefined> {
  return new Promise(resolve => {
    const s = createServer()
    s.once('error', () => { resolve(undefined) })
    s.listen(port, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => { resolve(typeof a === 'object' && a !== null ? a.port : undefined) })
    })
  })
}

/** Whether something on loopback accepts TCP connections on `port`. */
export async function listening (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

export interface Health {
  readonly ok: boolean
  readonly id: string
  readonly watermark: string
  readonly lastEvaluated: string
  readonly evaluated: number
  readonly digest: string
  readonly unevaluated: number
  readonly inflight: number
  readonly peers: number
  readonly role: 'voter' | 'observer'
  readonly epoch: number
  readonly voters: readonly string[]
  readonly sealed: boolean
  /** How many members and invites the group's configuration revokes. */
  readonly revoked: number
}

/** One relay process of the group; restartable on the same data dir and ports. */
export class RelayProcess {
  readonly index: number
  readonly id: string
  readonly key: PrivateKey
  readonly dataDir: string
  readonly tcp: string
  readonly ws: string
  private readonly args: string[]
  private child: ChildProcess | undefined
  httpUrl = ''
  readonly logs: string[] = []

  private readonly nodeFlags: readonly string[]

  constructor (index: number, id: string, key: PrivateKey, dataDir: string, tcpPort: number, wsPort: number, args: string[], nodeFlags: readonly string[]) {
    this.nodeFlags = nodeFlags
    this.index = index
    this.id = id
    this.key = key
    this.dataDir = dataDir
    this.tcp = `/ip4/127.0.0.1/tcp/${tcpPort}/p2p/${id}`
    this.ws = `/ip4/127.0.0.1/tcp/${wsPort}/ws/p2p/${id}`
    this.args = args
  }

  get pid (): number | undefined {
    return this.child?.pid
  }

  /** Spawns the relay and resolves once it logged `listening` (with its HTTP address). */
  async start (): Promise<void> {
    const child = spawn(process.execPath, [...this.nodeFlags, '--conditions=@tideline/source', '--import', 'tsx', CLI, 'run', ...this.args], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.child = child
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    child.stderr?.on('data', (d: Buffer) => { this.logs.push(`stderr: ${d.toString()}`) })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`relay ${this.index} did not start within 60 s:\n${this.logs.slice(-20).join('\n')}`)) }, 60_000)
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`relay ${this.index} exited with ${code}:\n${this.logs.slice(-20).join('\n')}`)) })
      lines.on('line', line => {
        this.logs.push(line)
        if (this.logs.length > 2000) this.logs.splice(0, 1000)
        try {
          const e = JSON.parse(line) as { event?: string, http?: string }
          if (e.event === 'listening' && e.http !== undefined) {
            this.httpUrl = e.http
            clearTimeout(timer)
            resolve()
          }
        } catch {
          // not a log line
        }
      })
    })
  }

  /** `kill -9`: no shutdown code runs. */
  async kill9 (): Promise<void> {
    await this.signal('SIGKILL')
  }

  /** SIGSTOP: the process stops where it is, its connections open, until `cont` (stop it only after that). */
  pause (): void {
    this.child?.kill('SIGSTOP')
  }

  /** SIGCONT: a paused process goes on with its memory whole. */
  cont (): void {
    this.child?.kill('SIGCONT')
  }

  /** Sets the faults a relay started with `--nemesis` injects into itself (`POST /nemesis`; `{}` heals). */
  async nemesis (state: { clockOffsetMs?: number, dropFrom?: readonly string[], delayFrom?: Readonly<Record<string, number>> }): Promise<void> {
    const r = await fetch(`${this.httpUrl}/nemesis`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(state), signal: AbortSignal.timeout(5_000) })
    if (!r.ok) throw new Error(`relay ${this.index}: POST /nemesis answered ${r.status} ${await r.text()}`)
  }

  /** SIGTERM (a voter hands over to the others first) and wait for the exit code. */
  async stop (): Promise<number | null> {
    return this.signal('SIGTERM')
  }

  /** Closes its stdin, as a dying supervisor would: it stops at once, without handing over. */
  async shutdown (): Promise<number | null> {
    const c = this.child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null
    c.removeAllListeners('exit')
    return new Promise(resolve => {
      c.once('exit', code => { resolve(code) })
      c.stdin?.end()
    })
  }

  private async signal (sig: NodeJS.Signals): Promise<number | null> {
    const c = this.child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null
    c.removeAllListeners('exit')
    return new Promise(resolve => {
      c.once('exit', code => { resolve(code) })
      c.kill(sig)
    })
  }

  async health (): Promise<Health> {
    const r = await fetch(`${this.httpUrl}/healthz`, { signal: AbortSignal.timeout(2_000) })
    return await r.json() as Health
  }

  /** Record counts by kind in its store (`GET /store`). */
  async storeStats (): Promise<{ values: number, batches: number, runs: number, records: number, meta: number }> {
    return await (await fetch(`${this.httpUrl}/store`, { signal: AbortSignal.timeout(30_000) })).json() as { values: number, batches: number, runs: number, records: number, meta: number }
  }

  async metrics (): Promise<Map<string, number>> {
    const text = await (await fetch(`${this.httpUrl}/metrics`, { signal: AbortSignal.timeout(2_000) })).text()
    const out = new Map<string, number>()
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue
      const i = line.lastIndexOf(' ')
      out.set(line.slice(0, i), Number(line.slice(i + 1)))
    }
    return out
  }
}

/**
 * Every relay's health, or undefined if any request failed or timed out: for
 * polls, where a relay busy for a moment on a loaded machine means "not yet".
 */
export async function healthOrNone (relays: readonly RelayProcess[]): Promise<Health[] | undefined> {
  try {
    return await Promise.all(relays.map(async r => r.health()))
  } catch {
    return undefined
  }
}

export interface ProcessGroup {
  /** The relays started with the group, then any added by `addRelay`. */
  readonly relays: readonly RelayProcess[]
  readonly genesis: SignedGenesis
  readonly invite: SignedInvite
  readonly creatorId: string
  readonly dir: string
  /**
   * Starts one more relay process, not in the genesis: it joins with an invite granting the voter role (or
   * `options.invite`) and asks to be voted in (unless `args` holds `--observer`).
   */
  addRelay(args?: readonly string[], options?: { readonly invite?: SignedInvite }): Promise<RelayProcess>
  /** An invite signed by the first relay: a bearer one for an hour, with the given role and name. */
  createInvite(init: { readonly role?: MemberRole, readonly name?: string, readonly peer?: string }): Promise<SignedInvite>
  /**
   * A client peer with a fresh identity, joined through the group's invite (or `options.invite`), that may send to
   * every relay the group has now; its home relay is the next one in turn.
   */
  startClient(timeouts: { readonly attemptTimeoutMs: number, readonly timeoutMs: number }, options?: { readonly invite?: SignedInvite, readonly home?: number }): Promise<NetClient>
  stop(): Promise<void>
}

export interface LocalGroupOptions {
  /** @default 3 */
  readonly relays?: number
  /** Procedures module (see `tideline-relay run --procedures`). @default the built-in workloads */
  readonly procedures?: string
  /** Extra node flags for the relay processes, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[]
  readonly groupId?: string
  /** Failure detector bound of every relay (`--suspect-ms`). @default the relay's (2000) */
  readonly suspectMs?: number
  /** More `tideline-relay run` options for relay `index` (e.g. `--announce`). @default none */
  readonly relayArgs?: (index: number) => readonly string[]
  /** The genesis's exactly-once retention (GroupConfig.txnRetentionMs). @default the protocol's (24 h) */
  readonly txnRetentionMs?: number
  /** The genesis's GroupConfig.txnSkewMs. @default the protocol's (60 s) */
  readonly txnSkewMs?: number
  /** The genesis's GroupConfig.signedCalls. @default false */
  readonly signedCalls?: boolean
  /** The genesis's GroupConfig.partitions. @default one partition */
  readonly partitions?: PartitionSpec
  /** Runs on each relay's data directory before the relays first start, and after they stopped, before the directory is removed (the nemesis mounts a small filesystem for each store there). */
  readonly dataDirs?: { readonly prepare: (dataDir: string) => Promise<void>, readonly release: (dataDir: string) => Promise<void> }
}

/** `tideline-relay hash` in a child process: the registry hash exactly as the relay processes will compute it. */
async function relayRegistryHash (procedures: string): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, ['--conditions=@tideline/source', '--import', 'tsx', CLI, 'hash', '--procedures', procedures])
  return stdout.trim()
}

/**
 * A throwaway group on loopback for tests and benchmarks: fresh identities
 * and a signed genesis in a temporary directory, free ports, and each relay
 * started as its own `tideline-relay run` process (restartable on the same
 * data and ports). `stop()` removes the directory.
 */
export async function startLocalGroup (o: LocalGroupOptions = {}): Promise<ProcessGroup> {
  const n = o.relays ?? 3
  const dir = await mkdtemp(join(tmpdir(), 'tideline-relays-'))
  const creator = await generateKeyPair('Ed25519')
  const ids = await Promise.all(Array.from({ length: n }, async (_, i) => loadOrCreateIdentity(join(dir, `relay-${i}`))))
  // The relays' own toolchain (tsx) decides the hash: the caller may run under another transpiler (Playwright's Babel) that prints functions differently.
  const registryHash = o.procedures === undefined ? (await loadRegistry(undefined)).hash : await relayRegistryHash(o.procedures)
  const genesis = await createGenesis(creator, { groupId: o.groupId ?? 'local-group', voters: ids.map(x => x.id), registryHash, ...(o.txnRetentionMs === undefined ? {} : { txnRetentionMs: o.txnRetentionMs }), ...(o.txnSkewMs === undefined ? {} : { txnSkewMs: o.txnSkewMs }), ...(o.signedCalls === true ? { signedCalls: true } : {}), ...(o.partitions === undefined ? {} : { partitions: o.partitions }) })
  const genesisFile = join(dir, 'genesis.txt')
  await writeFile(genesisFile, encodeSigned(genesis))
  // One at a time and all different: two picks of one random port would put a relay's TCP and WebSocket listeners on it.
  const ports: number[] = []
  while (ports.length < 2 * n) {
    const port = await freePort()
    if (!ports.includes(port)) ports.push(port)
  }
  const tcp = ids.map((x, i) => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${x.id}`)
  const relays = ids.map((x, i) => new RelayProcess(i, x.id, x.key, join(dir, `relay-${i}`), ports[i] as number, ports[n + i] as number, [
    '--data', join(dir, `relay-${i}`),
    '--genesis', genesisFile,
    '--listen', `/ip4/127.0.0.1/tcp/${ports[i]},/ip4/127.0.0.1/tcp/${ports[n + i]}/ws`,
    '--peers', tcp.filter((_, j) => j !== i).join(','),
    '--http', '127.0.0.1:0', '--exit-with-stdin',
    ...(o.procedures === undefined ? [] : ['--procedures', o.procedures]),
    ...(o.suspectMs === undefined ? [] : ['--suspect-ms', String(o.suspectMs)]),
    ...(o.relayArgs?.(i) ?? [])
  ], o.nodeFlags ?? []))
  for (const r of relays) await o.dataDirs?.prepare(r.dataDir)
  await Promise.all(relays.map(async r => r.start()))
  const invite = await createInvite((ids[0] as { key: PrivateKey }).key, genesis, { expiresAt: Date.now() + 3_600_000 })
  // Relays added later are voted in only with a voter grant.
  const voterInvite = await createInvite((ids[0] as { key: PrivateKey }).key, genesis, { expiresAt: Date.now() + 3_600_000, role: 'voter' })
  const creatorId = peerIdFromPrivateKey(creator).toString()
  let clientsStarted = 0
  return {
    relays,
    genesis,
    invite,
    creatorId,
    dir,
    async createInvite (init) {
      return createInvite((ids[0] as { key: PrivateKey }).key, genesis, { expiresAt: Date.now() + 3_600_000, ...init })
    },
    async startClient (timeouts, options = {}) {
      // Homes in turn, so the clients' load spreads evenly over the relays (as the etcd bench's clients over its members).
      const home = options.home ?? clientsStarted++ % relays.length
      const privateKey = await generateKeyPair('Ed25519')
      return NetClient.start({ privateKey, signer: nodeDecisionSigner(privateKey), voters: relays.map(r => r.tcp), invite: options.invite ?? invite, creator: creatorId, home, ...timeouts })
    },
    async addRelay (args = [], options = {}) {
      const i = relays.length
      const data = join(dir, `relay-${i}`)
      const x = await loadOrCreateIdentity(data)
      const tcpPort = await freePort()
      let wsPort = await freePort()
      while (wsPort === tcpPort || ports.includes(wsPort)) wsPort = await freePort()
      const r = new RelayProcess(i, x.id, x.key, data, tcpPort, wsPort, [
        '--data', data,
        '--genesis', genesisFile,
        '--invite', encodeSigned(options.invite ?? voterInvite),
        '--listen', `/ip4/127.0.0.1/tcp/${tcpPort},/ip4/127.0.0.1/tcp/${wsPort}/ws`,
        '--peers', relays.map(p => p.tcp).join(','),
        '--http', '127.0.0.1:0', '--exit-with-stdin',
        ...(o.procedures === undefined ? [] : ['--procedures', o.procedures]),
        ...(o.suspectMs === undefined ? [] : ['--suspect-ms', String(o.suspectMs)]),
        ...args
      ], o.nodeFlags ?? [])
      await r.start()
      relays.push(r)
      return r
    },
    async stop () {
      // All at once: none hands over to the others (they are going too).
      await Promise.all(relays.map(async r => r.shutdown()))
      for (const r of relays) await o.dataDirs?.release(r.dataDir).catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/**
 * A relay process that hosts no group (`tideline-relay run --signal-only`):
 * only WebRTC signalling and circuits for browser tabs, as for a group whose
 * voters are all tabs. `stop()` ends it and removes its directory.
 */
export async function startSignallingRelay (o: { readonly nodeFlags?: readonly string[] } = {}): Promise<{ readonly relay: RelayProcess, stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tideline-signal-'))
  const x = await loadOrCreateIdentity(dir)
  const tcpPort = await freePort()
  let wsPort = await freePort()
  while (wsPort === tcpPort) wsPort = await freePort()
  const relay = new RelayProcess(0, x.id, x.key, dir, tcpPort, wsPort, [
    '--data', dir, '--signal-only',
    '--listen', `/ip4/127.0.0.1/tcp/${tcpPort},/ip4/127.0.0.1/tcp/${wsPort}/ws`,
    '--http', '127.0.0.1:0', '--exit-with-stdin'
  ], o.nodeFlags ?? [])
  await relay.start()
  return {
    relay,
    async stop () {
      await relay.shutdown()
      await rm(dir, { recursive: true, force: true })
    }
  }
}
