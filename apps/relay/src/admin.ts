import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Revocation } from '@tideline/core'
import type { NetPeer, TidelineLibp2p } from '@tideline/net-libp2p'
import type { GroupHost, GroupSpec, HostedGroup } from './groups.js'
import { renderMetrics } from './metrics.js'
import type { Nemesis } from './nemesis.js'
import type { RelayLogger } from './log.js'

/**
 * The relay's HTTP port (loopback only: its operator's, never the open
 * network's). GET `/healthz`, `/metrics`, `/store`, `/groups`; POST
 * `/revoke`, `/groups`, `/nemesis` (with `--nemesis`); DELETE
 * `/groups/<id>`. POSTs take `application/json` only: a web page cannot send
 * that across origins without a preflight this server never answers.
 * `?group=<id>` points `/revoke` and `/store` at a hosted group; they serve
 * the main group (`--genesis`) without it.
 */

export interface HttpContext {
  readonly node: TidelineLibp2p
  readonly host: GroupHost
  readonly startedAt: number
  readonly nemesis: Nemesis | undefined
  readonly log: RelayLogger
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
/** A genesis and an invite in text form are at most about 2 × 87 KiB. */
const MAX_BODY = 256 * 1024

export function parseHostPort (s: string): { host: string, port: number } {
  const i = s.lastIndexOf(':')
  const host = s.slice(0, i).replace(/^\[|\]$/g, '')
  const port = Number(s.slice(i + 1))
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`--http wants host:port, got ${JSON.stringify(s)}`)
  if (!LOOPBACK.has(host)) throw new TypeError(`--http must be a loopback address (metrics are not for the open network), got ${host}`)
  return { host, port }
}

type Reply = (code: number, body: unknown) => void

/** Reads a JSON body (at most MAX_BODY bytes), or answers 400/413. */
function readJson (req: IncomingMessage, reply: Reply, then: (body: unknown) => void): void {
  let text = ''
  let size = 0
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => {
    size += chunk.length
    if (size > MAX_BODY) {
      reply(413, { error: { name: 'InvalidArgumentError', message: `the body is over ${MAX_BODY} bytes` } })
      req.destroy()
    } else {
      text += chunk
    }
  })
  req.on('end', () => {
    if (size > MAX_BODY) return
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (err) {
      reply(400, { error: { name: 'InvalidArgumentError', message: `the body is not JSON: ${(err as Error).message}` } })
      return
    }
    then(body)
  })
}

const errorReply = (reply: Reply, err: unknown): void => {
  const e = err as Error
  const code = e.name === 'GroupExistsError' ? 409 : e.name === 'InvalidArgumentError' || e.name === 'InvalidCredentialError' || e.name === 'ProcedureHashMismatchError' || e.name === 'TypeError' ? 400 : e.name === 'PermissionDeniedError' ? 403 : 503
  reply(code, { error: { name: e.name, message: e.message } })
}

/**
 * `POST /revoke` with `[{"kind": "peer" | "invite", "id": …}, …]`: this relay,
 * as a voter, revokes members and invites in one epoch change. Answers
 * `{"epoch": N}` once an installed epoch holds it.
 */
function revoke (req: IncomingMessage, reply: Reply, net: NetPeer): void {
  readJson(req, reply, body => {
    if (!Array.isArray(body)) {
      reply(400, { error: { name: 'InvalidArgumentError', message: 'the body must be a list of {"kind": "peer" | "invite", "id": "…"}' } })
      return
    }
    // Peer.revoke checks each target (InvalidArgumentError).
    net.peer.revoke(body as Revocation[]).then(epoch => { reply(200, { epoch }) }, (err: unknown) => { errorReply(reply, err) })
  })
}

/** A GroupSpec from an untrusted body: only its known fields, each of its type. */
function groupSpec (body: unknown): GroupSpec {
  const b = body as Record<string, unknown> | null
  if (typeof b !== 'object' || b === null || typeof b.genesis !== 'string') throw new TypeError('the body must be {"genesis": "<signed genesis text>", "procedures"?, "invite"?, "observer"?, "follow"?, "maxCallsPerSec"?}')
  if (b.procedures !== undefined && typeof b.procedures !== 'string') throw new TypeError('procedures must be a module path')
  if (b.invite !== undefined && typeof b.invite !== 'string') throw new TypeError('invite must be an invite in text form')
  if (b.observer !== undefined && typeof b.observer !== 'boolean') throw new TypeError('observer must be a boolean')
  if (b.follow !== undefined && (!Array.isArray(b.follow) || b.follow.some(p => !Number.isSafeInteger(p) || (p as number) < 0))) throw new TypeError('follow must be a list of partition numbers')
  if (b.follow !== undefined && b.observer !== true) throw new TypeError('follow is for an observer ("observer": true)')
  if (b.maxCallsPerSec !== undefined && !(typeof b.maxCallsPerSec === 'number' && b.maxCallsPerSec > 0 && Number.isFinite(b.maxCallsPerSec))) throw new TypeError('maxCallsPerSec must be a positive number')
  return {
    genesis: b.genesis,
    ...(b.procedures === undefined ? {} : { procedures: b.procedures }),
    ...(b.invite === undefined ? {} : { invite: b.invite }),
    ...(b.observer === true ? { observer: true } : {}),
    ...(b.follow === undefined ? {} : { follow: b.follow as number[] }),
    ...(b.maxCallsPerSec === undefined ? {} : { maxCallsPerSec: b.maxCallsPerSec })
  }
}

function groupRow (g: HostedGroup): Record<string, unknown> {
  const s = g.net.peer.status()
  return { group: g.id, main: g.main, role: s.role, epoch: s.epoch, voters: s.voters, evaluated: s.evaluated, quiet: s.quiet, sync: s.sync.phase, ...(s.failed === undefined ? {} : { failed: s.failed }) }
}

/** The group a request names (`?group=`), or the main one. */
function target (url: URL, host: GroupHost): HostedGroup | undefined {
  const id = url.searchParams.get('group')
  return id === null ? host.list().find(g => g.main) : host.get(id)
}

function health (ctx: HttpContext): { ok: boolean, body: Record<string, unknown> } {
  const groups = ctx.host.list()
  const up = ctx.node.status === 'started'
  const failed = groups.filter(g => g.net.peer.status().failed !== undefined).map(g => g.id)
  const main = groups.find(g => g.main)
  const base = { ok: up && failed.length === 0, groups: groups.length, ...(failed.length === 0 ? {} : { failedGroups: failed }), peers: ctx.node.getConnections().length }
  if (main === undefined) return { ok: base.ok, body: base }
  const status = main.net.peer.status()
  return {
    ok: base.ok,
    body: {
      ...base,
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
      quiet: status.quiet,
      sync: status.sync.phase,
      revoked: main.net.peer.config.revoked?.length ?? 0,
      ...(status.failed === undefined ? {} : { failed: status.failed })
    }
  }
}

function route (ctx: HttpContext, req: IncomingMessage, res: ServerResponse): void {
  const reply: Reply = (code, body) => { if (!res.headersSent) res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body)) }
  const url = new URL(req.url ?? '/', 'http://relay')
  const json = /^application\/json\b/.test(req.headers['content-type'] ?? '')
  const path = url.pathname
  if (req.method === 'POST' && !json) {
    reply(415, { error: { name: 'InvalidArgumentError', message: `POST ${path} takes application/json` } })
  } else if (req.method === 'POST' && path === '/revoke') {
    const g = target(url, ctx.host)
    if (g === undefined) reply(404, { error: { name: 'InvalidArgumentError', message: 'no such group here' } })
    else revoke(req, reply, g.net)
  } else if (req.method === 'POST' && path === '/nemesis' && ctx.nemesis !== undefined) {
    ctx.nemesis.serve(req, res)
  } else if (req.method === 'POST' && path === '/groups') {
    readJson(req, reply, body => {
      let spec: GroupSpec
      try {
        spec = groupSpec(body)
      } catch (err) {
        errorReply(reply, err)
        return
      }
      ctx.host.add(spec).then(g => { reply(201, groupRow(g)) }, (err: unknown) => { errorReply(reply, err) })
    })
  } else if (req.method === 'DELETE' && path.startsWith('/groups/')) {
    const id = decodeURIComponent(path.slice('/groups/'.length))
    const leaveMs = Number(url.searchParams.get('leave-ms') ?? '5000')
    ctx.host.remove(id, Number.isFinite(leaveMs) && leaveMs >= 0 ? leaveMs : 5_000).then(r => { reply(200, { group: id, ...r }) }, (err: unknown) => {
      if (ctx.host.get(id) === undefined) reply(404, { error: { name: (err as Error).name, message: (err as Error).message } })
      else errorReply(reply, err)
    })
  } else if (req.method !== 'GET') {
    res.writeHead(405).end()
  } else if (path === '/groups') {
    reply(200, ctx.host.list().map(groupRow))
  } else if (path === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
    const now = Date.now()
    const connections = ctx.node.getConnections().length
    res.end(renderMetrics(ctx.host.list().map(g => ({ ...(g.main ? {} : { group: g.id }), status: g.net.peer.status(), transport: g.net.transport.counters, connections, now, startedAt: ctx.startedAt }))))
  } else if (path === '/store') {
    // Record counts by kind: a scan of every key, for benchmarks and operators (not for frequent scraping).
    const g = target(url, ctx.host)
    if (g === undefined) reply(404, { error: { name: 'InvalidArgumentError', message: 'no such group here' } })
    else g.store.stats().then(stats => { reply(200, stats) }, (err: unknown) => { reply(503, { error: (err as Error).message }) })
  } else if (path === '/healthz') {
    const h = health(ctx)
    reply(h.ok ? 200 : 503, h.body)
  } else {
    res.writeHead(404).end()
  }
}

export async function serveHttp (spec: string, ctx: HttpContext): Promise<Server> {
  const { host, port } = parseHostPort(spec)
  const server = createServer((req, res) => {
    try {
      route(ctx, req, res)
    } catch (err) {
      ctx.log('http-failed', { url: req.url, error: (err as Error).message }, 'error')
      if (!res.headersSent) res.writeHead(500).end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { resolve() })
  })
  return server
}
