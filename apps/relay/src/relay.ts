import '@tideline/net-libp2p'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createRegistry, type ProcedureMap, type ProcedureRegistry, type Revocation } from '@tideline/core'
import { NetPeer, createNodeLibp2p, decodeSigned, type SignedGenesis } from '@tideline/net-libp2p'
import { LevelStore } from '@tideline/store-node'
import { nodeDecisionSigner } from './node-signer.js'
import { workloadProcedures } from '@tideline/workloads'
import { loadOrCreateIdentity } from './identity.js'
import { renderMetrics } from './metrics.js'
import type { RelayLogger } from './log.js'
import { Nemesis } from './nemesis.js'

export interface RelayOptions {
  /** Data directory: identity key and the durable store live here. */
  readonly dataDir: string
  /** The group's signed genesis (text form, as `tideline-relay genesis` writes it). */
  readonly genesis: string
  /** Module whose default export (or `procedures` export) is the group's procedure map; built-in workloads when absent. */
  readonly procedures?: string
  /** libp2p listen multiaddrs. @default ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] */
  readonly listen?: readonly string[]
  /** Addresses to tell peers instead of the listen ones (behind a TLS proxy or NAT). @default the listen addresses */
  readonly announce?: readonly string[]
  /** Other voters' multiaddrs (…/p2p/<id>), kept connected. */
  readonly peers?: readonly string[]
  /** Loopback host:port for /healthz and /metrics; port 0 picks one. Absent: no HTTP. */
  readonly http?: string
  /** Peer ids admitted without an invite (an operator's allow list). */
  readonly admit?: readonly string[]
  /** Peer ids this relay votes in as voters when they ask, besides those whose invite grants the voter role. */
  readonly admitVoters?: readonly string[]
  /** The longest a voter may stay silent (or its watermark entry stuck) before it is voted out of the next epoch. @default 2000 */
  readonly suspectMs?: number
  /** The silence a voter always has on top of its usual gap between messages (the failure detector adapts above it, up to suspectMs). @default 500 */
  readonly suspectMinMs?: number
  /** How often an idle voter publishes its watermark entry (its heartbeat; keep it well below suspectMinMs). @default 200 */
  readonly heartbeatMs?: number
  /** How far below the voters' durable frontier history is kept (for lagging replicas; older ones take a snapshot). @default 60000 */
  readonly retainMs?: number
  /** Never ask to be a voter: a read replica that follows the group (it still votes if the group puts it in an epoch). @default false */
  readonly observer?: boolean
  /** An observer of a partitioned group: the partitions it holds (it receives only their part of each batch). @default every one */
  readonly follow?: readonly number[]
  /** For a relay that is not in the genesis: the invite (text form) it presents to the voters. */
  readonly invite?: string
  /** Take injected faults (clock offset, links cut or slowed) over `POST /nemesis` on the HTTP port: for `pnpm nemesis` only. @default false */
  readonly nemesis?: boolean
  readonly logger: RelayLogger
}

export interface RelayHandle {
  readonly id: string
  readonly net: NetPeer
  readonly addresses: readonly string[]
  /** `http://host:port` of the health and metrics endpoint, if any. */
  readonly httpUrl: string | undefined
  /** Stops serving, closes the store; safe to call twice. */
  stop(): Promise<void>
  /** Hands over first: a voter asks the group to continue without it (bounded by `timeoutMs`), then stops. */
  leaveAndStop(timeoutMs?: number): Promise<void>
}

/** The built-in procedures: bank transfers and list-append (the test workloads). */
export const BUILTIN_PROCEDURES = 'builtin:workloads'

export async function loadRegistry (spec: string | undefined): Promise<ProcedureRegistry> {
  if (spec === undefined || spec === BUILTIN_PROCEDURES) return createRegistry(workloadProcedures)
  const mod = await import(pathToFileURL(spec).href) as { default?: ProcedureMap, procedures?: ProcedureMap }
  const map = mod.procedures ?? mod.default
  if (map === undefined || typeof map !== 'object') throw new TypeError(`${spec} exports neither \`procedures\` nor a default procedure map`)
  return createRegistry(map)
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

function parseHostPort (s: string): { host: string, port: number } {
  const i = s.lastIndexOf(':')
  const host = s.slice(0, i).replace(/^\[|\]$/g, '')
  const port = Number(s.slice(i + 1))
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`--http wants host:port, got ${JSON.stringify(s)}`)
  if (!LOOPBACK.has(host)) throw new TypeError(`--http must be a loopback address (metrics are not for the open network), got ${host}`)
  return { host, port }
}

/** Starts a relay: a voter (or observer) with a LevelStore, libp2p listeners and the HTTP endpoints. */
export async function startRelay (o: RelayOptions): Promise<RelayHandle> {
  const identity = await loadOrCreateIdentity(o.dataDir)
  const log = o.logger
  if (identity.created) log('identity-created', { id: identity.id })
  const signed: SignedGenesis = decodeSigned(o.genesis)
  const registry = await loadRegistry(o.procedures)
  const store = await LevelStore.open({ path: join(o.dataDir, 'store') })
  const admitted = new Set(o.admit ?? [])
  const admittedVoters = new Set(o.admitVoters ?? [])
  const nemesis = o.nemesis === true ? new Nemesis() : undefined
  let net: NetPeer
  try {
    net = await NetPeer.start({
      ...(nemesis === undefined ? {} : { clock: nemesis.clock, inbound: (from: string) => nemesis.inbound(from) }),
      privateKey: identity.key,
      signer: nodeDecisionSigner(identity.key),
      genesis: signed,
      registry,
      store,
      // Browser tabs reserve a slot here to reach each other over WebRTC (relayServer).
      createNode: privateKey => createNodeLibp2p({ privateKey, listen: o.listen ?? ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'], ...(o.announce === undefined ? {} : { announce: o.announce }), allowPeer: () => true, relayServer: true }),
      peers: o.peers ?? [],
      admit: p => admitted.has(p),
      ...(o.invite === undefined ? {} : { invite: decodeSigned(o.invite) }),
      // Relays serve as voters: one voted out (it was down) asks to be voted back in, and a new relay asks to be added.
      // It is voted in only if its invite grants the voter role (or the operator listed it here).
      candidate: o.observer !== true,
      ...(o.follow === undefined ? {} : { partitions: o.follow }),
      admitVoter: p => admittedVoters.has(p),
      ...(o.suspectMs === undefined ? {} : { suspectMs: o.suspectMs }),
      ...(o.suspectMinMs === undefined ? {} : { suspectMinMs: o.suspectMinMs }),
      ...(o.heartbeatMs === undefined ? {} : { idleHeartbeatMs: o.heartbeatMs }),
      ...(o.retainMs === undefined ? {} : { retainMs: o.retainMs }),
      logger: (event, detail) => { log(event, detail) }
    })
  } catch (err) {
    await store.close()
    throw err
  }
  const startedAt = Date.now()
  const server = o.http === undefined ? undefined : await serveHttp(o.http, net, store, startedAt, nemesis)
  const addr = server?.address()
  const httpUrl = addr === undefined || addr === null || typeof addr === 'string' ? undefined : `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
  const addresses = net.addresses()
  const status = net.peer.status()
  log('listening', { id: identity.id, role: status.role, group: net.genesis.groupId, addresses, http: httpUrl, evaluated: status.evaluated })
  // Where tools find a running relay (the dev group, tests).
  const info = join(o.dataDir, 'relay.json')
  await writeFile(`${info}.tmp`, JSON.stringify({ id: identity.id, pid: process.pid, addresses, http: httpUrl }, null, 2))
  await rename(`${info}.tmp`, info)
  const ref = { stopping: undefined as Promise<void> | undefined }
  const handle: RelayHandle = {
    id: identity.id,
    net,
    addresses,
    httpUrl,
    async leaveAndStop (timeoutMs = 5_000) {
      if (ref.stopping === undefined && net.peer.role === 'voter' && net.peer.config.voters.length > 1) {
        const started = Date.now()
        log('leaving', { epoch: net.peer.config.epoch, voters: net.peer.config.voters })
        try {
          await net.peer.leave({ timeoutMs })
          log('left', { epoch: net.peer.config.epoch, ms: Date.now() - started })
        } catch (err) {
          log('leave-failed', { error: String(err) }, 'warn')
        }
      }
      await handle.stop()
    },
    async stop () {
      ref.stopping ??= (async () => {
        log('stopping', { evaluated: net.peer.status().evaluated })
        if (server !== undefined) await new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() })
        await net.stop()
        await store.close()
        log('stopped', {})
      })()
      return ref.stopping
    }
  }
  return handle
}

/**
 * `POST /revoke` with `[{"kind": "peer" | "invite", "id": …}, …]`: this relay,
 * as a voter, revokes members and invites in one epoch change (its operator's word: the HTTP port is
 * on loopback). Answers `{"epoch": N}` once an installed epoch holds it.
 */
function revoke (req: IncomingMessage, res: ServerResponse, net: NetPeer): void {
  const reply = (code: number, body: unknown): void => { res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body)) }
  let text = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => { text += chunk; if (text.length > 4096) req.destroy() })
  req.on('end', () => {
    let targets: Revocation[]
    try {
      const body = JSON.parse(text) as unknown
      if (!Array.isArray(body)) throw new Error('the body must be a list of {"kind": "peer" | "invite", "id": "…"}')
      targets = body as Revocation[]
    } catch (err) {
      reply(400, { error: { name: 'InvalidArgumentError', message: (err as Error).message } })
      return
    }
    // Peer.revoke checks each target (InvalidArgumentError).
    net.peer.revoke(targets).then(epoch => { reply(200, { epoch }) }, (err: unknown) => {
      const e = err as Error
      reply(e.name === 'InvalidArgumentError' ? 400 : e.name === 'PermissionDeniedError' ? 403 : 503, { error: { name: e.name, message: e.message } })
    })
  })
}

async function serveHttp (spec: string, net: NetPeer, store: LevelStore, startedAt: number, nemesis: Nemesis | undefined): Promise<Server> {
  const { host, port } = parseHostPort(spec)
  const server = createServer((req, res) => {
    const status = net.peer.status()
    if (req.method === 'POST' && req.url === '/revoke') {
      // JSON only: a web page cannot send that across origins without a preflight this server never answers.
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) res.writeHead(415, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { name: 'InvalidArgumentError', message: 'POST /revoke takes application/json' } }))
      else revoke(req, res, net)
    } else if (req.method === 'POST' && req.url === '/nemesis' && nemesis !== undefined && /^application\/json\b/.test(req.headers['content-type'] ?? '')) {
      nemesis.serve(req, res)
    } else if (req.method !== 'GET') {
      res.writeHead(405).end()
    } else if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
      res.end(renderMetrics({ status, transport: net.transport.counters, connections: net.node.getConnections().length, now: Date.now(), startedAt }))
    } else if (req.url === '/store') {
      // Record counts by kind: a scan of every key, for benchmarks and operators (not for frequent scraping).
      store.stats().then(stats => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(stats))
      }, (err: unknown) => {
        res.writeHead(503, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: (err as Error).message }))
      })
    } else if (req.url === '/healthz') {
      const ok = status.failed === undefined && net.node.status === 'started'
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        ok,
        id: status.id,
        role: status.role,
        epoch: status.epoch,
        watermark: status.watermark,
        frontier: status.frontier,
        lastEvaluated: status.lastEvaluated,
        evaluated: status.evaluated,
        digest: status.digest,
        unevaluated: status.unevaluated,
        inflight: status.inflight,
        voters: status.voters,
        sealed: status.sealed,
        healing: status.healing,
        sync: status.sync.phase,
        revoked: net.peer.config.revoked?.length ?? 0,
        peers: net.node.getConnections().length,
        ...(status.failed === undefined ? {} : { failed: status.failed })
      }))
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { resolve() })
  })
  return server
}
