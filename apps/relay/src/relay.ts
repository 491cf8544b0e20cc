import '@tideline/net-libp2p'
import { writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { InvalidArgumentError, createRegistry, type ProcedureMap, type ProcedureRegistry } from '@tideline/core'
import { createNodeLibp2p, keepConnected, type NetPeer } from '@tideline/net-libp2p'
import { nodeDecisionSigner } from './node-signer.js'
import { GroupHost, type GroupHostInit, type GroupSpec } from './groups.js'
import { serveHttp } from './admin.js'
import { workloadProcedures } from '@tideline/workloads'
import { loadOrCreateIdentity } from './identity.js'
import type { RelayLogger } from './log.js'
import { Nemesis } from './nemesis.js'

export interface RelayOptions {
  /** Data directory: identity key and the durable store live here (hosted groups' under `groups/<id>/`). */
  readonly dataDir: string
  /** The main group's signed genesis (text form, as `tideline-relay genesis` writes it); absent: only hosted groups (saved ones, and those added over HTTP). */
  readonly genesis?: string
  /** Most groups this relay hosts at once, its main group included. @default 1000 */
  readonly maxGroups?: number
  /**
   * Hosts no group: only WebRTC signalling and circuit relaying for browser
   * tabs (a group of tab voters, docs/design/tabs.md §4). It is no member of
   * any group, stores nothing of theirs and sees only encrypted streams;
   * `genesis` must be absent and `group add` is refused. @default false
   */
  readonly signalOnly?: boolean
  /** Most browser tabs holding a circuit slot on this relay at once (`--max-reservations`). @default 1024 */
  readonly maxReservations?: number
  /** Most calls per second this relay takes as a voter in each group (a group's own `maxCallsPerSec` overrides it). @default unlimited */
  readonly maxCallsPerSec?: number
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
  /** How long a voter idles (no calls, reads or batches, no observer or candidate) before it stops its heartbeat until woken; 0: never. @default 2000 */
  readonly quiesceAfterMs?: number
  /** Busy voters' watermark entries through one hub voter in groups of 4 or more (entry-hub.ts); false: every voter to every voter. @default true */
  readonly entryHub?: boolean
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
  /** The main group's peer (`genesis`); throws for a relay started without one. */
  readonly net: NetPeer
  /** Every group this relay hosts (main first), and adding or removing them at run time (also `POST`/`DELETE /groups` on the HTTP port). */
  readonly groups: GroupHost
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

/**
 * Starts a relay: one libp2p node (its identity, listeners and connections)
 * hosting its main group (`genesis`) and any other groups saved in its data
 * directory or added at run time, each a voter (or observer) with its own
 * LevelStore; and the HTTP endpoints.
 */
export async function startRelay (o: RelayOptions): Promise<RelayHandle> {
  if (o.signalOnly === true && o.genesis !== undefined) throw new InvalidArgumentError('a signal-only relay hosts no group: give it no genesis')
  const identity = await loadOrCreateIdentity(o.dataDir)
  const log = o.logger
  if (identity.created) log('identity-created', { id: identity.id })
  const nemesis = o.nemesis === true ? new Nemesis() : undefined
  const admitted = new Set(o.admit ?? [])
  const admittedVoters = new Set(o.admitVoters ?? [])
  const registries = new Map<string, Promise<ProcedureRegistry>>()
  // Browser tabs reserve a slot here to reach each other over WebRTC (relayServer).
  const node = await createNodeLibp2p({ privateKey: identity.key, listen: o.listen ?? ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'], ...(o.announce === undefined ? {} : { announce: o.announce }), allowPeer: () => true, relayServer: true, ...(o.maxReservations === undefined ? {} : { maxReservations: o.maxReservations }) })
  const signer = nodeDecisionSigner(identity.key)
  const peerInit = (spec: GroupSpec, group: string, main: boolean): ReturnType<GroupHostInit['peerInit']> => ({
    ...(nemesis === undefined ? {} : { clock: nemesis.clock, inbound: (from: string) => nemesis.inbound(from) }),
    signer,
    admit: p => admitted.has(p),
    // Relays serve as voters: one voted out (it was down) asks to be voted back in, and a new relay asks to be added.
    // It is voted in only if its invite grants the voter role (or the operator listed it here).
    candidate: spec.observer !== true && o.observer !== true,
    admitVoter: p => admittedVoters.has(p),
    ...(o.suspectMs === undefined ? {} : { suspectMs: o.suspectMs }),
    ...(o.suspectMinMs === undefined ? {} : { suspectMinMs: o.suspectMinMs }),
    ...(o.heartbeatMs === undefined ? {} : { idleHeartbeatMs: o.heartbeatMs }),
    ...(o.quiesceAfterMs === undefined ? {} : { quiesceAfterMs: o.quiesceAfterMs }),
    ...(o.entryHub === undefined ? {} : { entryHub: o.entryHub }),
    ...(o.retainMs === undefined ? {} : { retainMs: o.retainMs }),
    ...(o.maxCallsPerSec === undefined ? {} : { maxCallsPerSec: o.maxCallsPerSec }),
    // A hosted group's lines name it; the main group's read as a one-group relay's always did.
    logger: (event, detail) => { log(event, main ? detail : { group, ...detail }) }
  })
  const mainSpec: GroupSpec | undefined = o.genesis === undefined
    ? undefined
    : { genesis: o.genesis, ...(o.procedures === undefined ? {} : { procedures: o.procedures }), ...(o.invite === undefined ? {} : { invite: o.invite }), ...(o.observer === true ? { observer: true } : {}), ...(o.follow === undefined ? {} : { follow: o.follow }) }
  const host = new GroupHost({
    dataDir: o.dataDir,
    key: identity.key,
    node,
    log,
    maxGroups: o.signalOnly === true ? 0 : o.maxGroups ?? 1_000,
    registry: async spec => {
      const k = spec ?? BUILTIN_PROCEDURES
      let r = registries.get(k)
      if (r === undefined) {
        r = loadRegistry(spec)
        registries.set(k, r)
        r.catch(() => { registries.delete(k) })
      }
      return r
    },
    peerInit
  })
  // The relay keeps its configured peers connected (once, for every group).
  const stopDialling = keepConnected(node, o.peers ?? [], identity.id)
  try {
    if (mainSpec !== undefined) await host.add(mainSpec, true)
    if (o.signalOnly !== true) await host.loadSaved()
  } catch (err) {
    stopDialling()
    await host.stopAll()
    await node.stop()
    throw err
  }
  const startedAt = Date.now()
  const server = o.http === undefined ? undefined : await serveHttp(o.http, { node, host, startedAt, nemesis, log })
  const addr = server?.address()
  const httpUrl = addr === undefined || addr === null || typeof addr === 'string' ? undefined : `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
  const addresses = node.getMultiaddrs().map(String)
  const main = host.list().find(g => g.main)
  const status = main?.net.peer.status()
  log('listening', { id: identity.id, role: o.signalOnly === true ? 'signal-only' : status?.role, group: main?.id, groups: host.size, addresses, http: httpUrl, evaluated: status?.evaluated })
  // Where tools find a running relay (the dev group, tests).
  const info = join(o.dataDir, 'relay.json')
  await writeFile(`${info}.tmp`, JSON.stringify({ id: identity.id, pid: process.pid, addresses, http: httpUrl }, null, 2))
  await rename(`${info}.tmp`, info)
  const ref = { stopping: undefined as Promise<void> | undefined }
  const stop = async (leaveMs: number | undefined): Promise<void> => {
    ref.stopping ??= (async () => {
      log('stopping', { groups: host.size, evaluated: main?.net.peer.status().evaluated })
      stopDialling()
      if (server !== undefined) await new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() })
      await host.stopAll(leaveMs)
      await node.stop()
      log('stopped', {})
    })()
    return ref.stopping
  }
  const handle: RelayHandle = {
    id: identity.id,
    get net (): NetPeer {
      const g = host.list().find(h => h.main)
      if (g === undefined) throw new Error('this relay has no main group (started without a genesis)')
      return g.net
    },
    groups: host,
    addresses,
    httpUrl,
    // Every voter hands over first, so its groups go on without a stall.
    async leaveAndStop (timeoutMs = 5_000) { await stop(timeoutMs) },
    async stop () { await stop(undefined) }
  }
  return handle
}
