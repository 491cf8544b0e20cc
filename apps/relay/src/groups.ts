import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { InvalidArgumentError, type ProcedureRegistry } from '@tideline/core'
import { NetPeer, decodeSigned, verifyGenesis, type NetPeerInit, type TidelineLibp2p } from '@tideline/net-libp2p'
import { LevelStore } from '@tideline/store-node'
import type { RelayLogger } from './log.js'

/**
 * The groups one relay process hosts: each with its own genesis, procedures,
 * voters, epochs, store (its own LevelDB directory) and metrics label, all on
 * one libp2p node (one identity, one set of listeners; each group speaks its
 * own protocol ids and gossip topic). Groups are added and removed at run
 * time; an added group is written to `<data>/groups/<id>/group.json` and
 * comes back when the relay restarts. The group given on the command line
 * (`--genesis`) is the relay's main group: its store stays at `<data>/store`
 * and its metrics carry no group label.
 */

/** What a hosted group is started from (group.json, and the body of `POST /groups`). */
export interface GroupSpec {
  /** The group's signed genesis (text form, as `tideline-relay genesis` writes it). */
  readonly genesis: string
  /** Module whose `procedures` (or default) export is the group's procedure map; built-in workloads when absent. */
  readonly procedures?: string
  /** For a group whose genesis does not name this relay: the invite (text form) it presents. */
  readonly invite?: string
  /** Never ask to be a voter of this group. @default false */
  readonly observer?: boolean
  /** An observer of a partitioned group: the partitions it holds. @default every one */
  readonly follow?: readonly number[]
  /** Most calls of this group this relay takes per second as a voter (RateLimitedError beyond). @default the relay's `--max-calls-per-sec`, else unlimited */
  readonly maxCallsPerSec?: number
}

export interface HostedGroup {
  readonly id: string
  readonly spec: GroupSpec
  readonly net: NetPeer
  readonly store: LevelStore
  /** The relay's main group (`--genesis`). */
  readonly main: boolean
}

export interface GroupHostInit {
  readonly dataDir: string
  readonly key: PrivateKey
  readonly node: TidelineLibp2p
  readonly log: RelayLogger
  /** Most groups this relay hosts at once (an add beyond it is refused). */
  readonly maxGroups: number
  readonly registry: (spec: string | undefined) => Promise<ProcedureRegistry>
  /** What every group's NetPeer is started with besides its own (timeouts, signer, fault injection). */
  readonly peerInit: (spec: GroupSpec, group: string, main: boolean) => Omit<NetPeerInit, 'privateKey' | 'genesis' | 'registry' | 'store' | 'shared' | 'createNode'>
}

const GROUP_FILE = 'group.json'

export class GroupHost {
  private readonly groups = new Map<string, HostedGroup>()
  /** Groups being added or removed (a second request for one waits for neither: it is refused). */
  private readonly changing = new Set<string>()
  private readonly init: GroupHostInit

  constructor (init: GroupHostInit) {
    this.init = init
  }

  /** Whether `peerId` is a member of any hosted group (it keeps its connection to this relay). */
  member (peerId: string): boolean {
    for (const g of this.groups.values()) if (g.net.isMember(peerId)) return true
    return false
  }

  get (id: string): HostedGroup | undefined {
    return this.groups.get(id)
  }

  list (): HostedGroup[] {
    return [...this.groups.values()]
  }

  get size (): number {
    return this.groups.size
  }

  /**
   * Starts hosting a group: checks its genesis and procedures, opens its
   * store, joins it on the shared node. `main`: the relay's `--genesis`
   * group (store at `<data>/store`, not saved to group.json).
   */
  async add (spec: GroupSpec, main = false): Promise<HostedGroup> {
    // A relay that hosts none (signal-only) says so, whatever it is sent.
    if (this.init.maxGroups === 0) throw new InvalidArgumentError('this relay hosts no group (--signal-only)')
    const signed = decodeSigned(spec.genesis)
    const genesis = await verifyGenesis(signed)
    const id = genesis.groupId
    // It names a directory (and a metrics label): the genesis allows 1-64 of [A-Za-z0-9._-], which takes in `.` and `..`.
    if (id === '.' || id === '..') throw new InvalidArgumentError(`a group id cannot be ${JSON.stringify(id)}`)
    if (this.groups.has(id) || this.changing.has(id)) throw new GroupExistsError(`this relay already hosts group ${id}`)
    if (this.groups.size >= this.init.maxGroups) throw new InvalidArgumentError(`this relay hosts ${this.groups.size} groups, its most (--max-groups)`)
    this.changing.add(id)
    try {
      const registry = await this.init.registry(spec.procedures)
      const dir = main ? this.init.dataDir : join(this.init.dataDir, 'groups', id)
      await mkdir(dir, { recursive: true })
      const store = await LevelStore.open({ path: join(dir, 'store') })
      let net: NetPeer
      try {
        net = await NetPeer.start({
          ...this.init.peerInit(spec, id, main),
          privateKey: this.init.key,
          genesis: signed,
          registry,
          store,
          shared: { node: this.init.node, member: p => this.member(p) },
          ...(spec.invite === undefined ? {} : { invite: decodeSigned(spec.invite) }),
          ...(spec.follow === undefined ? {} : { partitions: spec.follow }),
          ...(spec.maxCallsPerSec === undefined ? {} : { maxCallsPerSec: spec.maxCallsPerSec })
        })
      } catch (err) {
        await store.close()
        throw err
      }
      if (!main) await writeJson(join(dir, GROUP_FILE), spec)
      const g: HostedGroup = { id, spec, net, store, main }
      this.groups.set(id, g)
      const status = net.peer.status()
      this.init.log('group-added', { group: id, role: status.role, epoch: status.epoch, evaluated: status.evaluated, main })
      return g
    } finally {
      this.changing.delete(id)
    }
  }

  /** Starts every group saved under `<data>/groups` (those added before a restart). A group that fails to start is logged and skipped. */
  async loadSaved (): Promise<void> {
    let names: string[]
    try {
      names = await readdir(join(this.init.dataDir, 'groups'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const name of names.sort()) {
      let spec: GroupSpec
      try {
        spec = JSON.parse(await readFile(join(this.init.dataDir, 'groups', name, GROUP_FILE), 'utf8')) as GroupSpec
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.init.log('group-unreadable', { group: name, error: (err as Error).message }, 'error')
        continue
      }
      try {
        await this.add(spec)
      } catch (err) {
        this.init.log('group-failed', { group: name, error: (err as Error).message }, 'error')
      }
    }
  }

  /**
   * Stops hosting a group. A voter hands over first (bounded by `leaveMs`),
   * so the group goes on without this relay. Its store stays on disk
   * (`group.json` becomes `group.removed.json`): adding the group again
   * picks it up where it was.
   */
  async remove (id: string, leaveMs = 5_000): Promise<{ left: boolean }> {
    const g = this.groups.get(id)
    if (g === undefined || this.changing.has(id)) throw new InvalidArgumentError(`this relay does not host group ${id}`)
    if (g.main) throw new InvalidArgumentError(`group ${id} is this relay's main group (--genesis): stop the relay instead`)
    this.changing.add(id)
    try {
      const left = await handOver(g, leaveMs, this.init.log)
      this.groups.delete(id)
      await g.net.stop()
      await g.store.close()
      const dir = join(this.init.dataDir, 'groups', id)
      await rename(join(dir, GROUP_FILE), join(dir, 'group.removed.json')).catch(() => {})
      this.init.log('group-removed', { group: id, left })
      return { left }
    } finally {
      this.changing.delete(id)
    }
  }

  /** Stops every group (handing over first when `leaveMs` is given), main group last. */
  async stopAll (leaveMs?: number): Promise<void> {
    const all = [...this.groups.values()].sort((a, b) => Number(a.main) - Number(b.main))
    if (leaveMs !== undefined) await Promise.all(all.map(async g => handOver(g, leaveMs, this.init.log)))
    for (const g of all) {
      await g.net.stop()
      await g.store.close()
    }
    this.groups.clear()
  }
}

/** A voter of a group of several asks it to go on without this relay; whether it did in time. */
async function handOver (g: HostedGroup, timeoutMs: number, log: RelayLogger): Promise<boolean> {
  const peer = g.net.peer
  if (peer.role !== 'voter' || peer.config.voters.length <= 1) return false
  const started = Date.now()
  log('leaving', { group: g.id, epoch: peer.config.epoch, voters: peer.config.voters })
  try {
    await peer.leave({ timeoutMs })
    log('left', { group: g.id, epoch: peer.config.epoch, ms: Date.now() - started })
    return true
  } catch (err) {
    log('leave-failed', { group: g.id, error: String(err) }, 'warn')
    return false
  }
}

async function writeJson (file: string, value: unknown): Promise<void> {
  await writeFile(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`)
  await rename(`${file}.tmp`, file)
}

/** An add for a group this relay already hosts. */
export class GroupExistsError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'GroupExistsError'
  }
}
