import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGenesis, createInvite, decodeSigned, encodeSigned, verifyGenesis } from '@tideline/net-libp2p'
import type { PartitionSpec } from '@tideline/core'
import type { PrivateKey } from '@libp2p/interface'
import { loadOrCreateIdentity } from './identity.js'
import { loadRegistry } from './relay.js'

export interface DevGroupOptions {
  /** Where identities, stores, the genesis and the invite are kept between runs. */
  readonly dir: string
  /** Relay i listens on TCP basePort+i, WebSockets basePort+10+i, HTTP basePort+20+i (all on 127.0.0.1). */
  readonly basePort: number
  readonly procedures?: string
  readonly groupId?: string
  readonly relays?: number
  /** The genesis's partition function (GroupConfig.partitions). @default one partition */
  readonly partitions?: PartitionSpec
  /** @default write to stdout */
  readonly print?: (line: string) => void
}

export interface DevRelay {
  readonly id: string
  readonly tcp: string
  readonly ws: string
  readonly http: string
}

/** What a dev group publishes in `<dir>/group.json` for apps and tools. */
export interface DevGroupInfo {
  readonly groupId: string
  readonly creator: string
  readonly genesis: string
  readonly invite: string
  readonly relays: readonly DevRelay[]
}

export interface DevGroup {
  readonly info: DevGroupInfo
  /** Stops every relay (closing their stdin), then waits for them. */
  stop(): Promise<void>
}

// The CLI next to this module: its TypeScript source in the workspace (run under tsx), its built JavaScript in a package.
const CLI = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './cli.ts' : './cli.js', import.meta.url))

/**
 * Prepares (first run) or reuses (later runs) a local group of relays on
 * loopback and starts each as its own process: what `pnpm relay -- dev`
 * and the demo run.
 */
/** A prepared dev group: its published info, and what preparing it did to an older group's stores. */
export interface PreparedDevGroup {
  readonly info: DevGroupInfo
  readonly genesisFile: string
  /** Why a new group was made over an existing one (procedures, relays or group id changed); undefined when the group was reused or is the first. */
  readonly renewed: string | undefined
  /** Where the old group's relay stores were moved (never deleted). */
  readonly movedStores: readonly string[]
}

/**
 * Prepares (first run) or reuses (later runs) the genesis, invite and
 * addresses of a local dev group. A changed procedure module, relay set,
 * group id or partition function makes a new group: the old group's relay stores are moved aside
 * (`store.<group>-<time>`), not deleted, and the caller is told why.
 */
export async function prepareDevGroup (o: DevGroupOptions): Promise<PreparedDevGroup> {
  const n = o.relays ?? 3
  const dir = resolve(o.dir)
  await mkdir(dir, { recursive: true })
  const groupId = o.groupId ?? 'tideline-dev'
  const ids = await Promise.all(Array.from({ length: n }, async (_, i) => loadOrCreateIdentity(join(dir, `relay-${i}`))))
  const creator = await loadOrCreateIdentity(join(dir, 'creator'))
  const registry = await loadRegistry(o.procedures)
  const genesisFile = join(dir, 'genesis.txt')
  let genesisText: string | undefined
  let renewed: string | undefined
  let oldGroup = 'unknown'
  try {
    genesisText = (await readFile(genesisFile, 'utf8')).trim()
    const g = await verifyGenesis(decodeSigned(genesisText), creator.id)
    oldGroup = g.groupId
    // A changed procedure module or relay set means a new group (stores are per group).
    const why: string[] = []
    if (g.registryHash !== registry.hash) why.push(`the procedures changed (hash ${g.registryHash.slice(0, 12)}… → ${registry.hash.slice(0, 12)}…)`)
    if (g.voters.join() !== ids.map(x => x.id).join()) why.push('the relay set changed')
    if (g.groupId !== groupId) why.push(`the group id changed (${g.groupId} → ${groupId})`)
    if (g.signedCalls !== true) why.push('the group now runs signed calls')
    if (JSON.stringify(g.partitions ?? null) !== JSON.stringify(o.partitions ?? null)) why.push('the partitions changed')
    if (why.length > 0) {
      renewed = why.join(', ')
      genesisText = undefined
    }
  } catch {
    genesisText = undefined
  }
  const movedStores: string[] = []
  if (genesisText === undefined) {
    // Signed calls: every replica checks who made each call, so procedures can enforce rules by caller (the demo's delete rule).
    genesisText = encodeSigned(await createGenesis(creator.key, { groupId, voters: ids.map(x => x.id), registryHash: registry.hash, signedCalls: true, ...(o.partitions === undefined ? {} : { partitions: o.partitions }) }))
    await writeFile(genesisFile, `${genesisText}\n`)
    // Old stores belong to the old group: moved aside, never deleted (they may hold data someone wants).
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    for (let i = 0; i < n; i++) {
      const store = join(dir, `relay-${i}`, 'store')
      const aside = `${store}.${oldGroup}-${stamp}`
      try {
        await rename(store, aside)
        movedStores.push(aside)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
  }
  const invite = encodeSigned(await createInvite((ids[0] as { key: PrivateKey }).key, decodeSigned(genesisText), { expiresAt: Date.now() + 30 * 24 * 3_600_000 }))
  const relays: DevRelay[] = ids.map((x, i) => ({
    id: x.id,
    tcp: `/ip4/127.0.0.1/tcp/${o.basePort + i}/p2p/${x.id}`,
    ws: `/ip4/127.0.0.1/tcp/${o.basePort + 10 + i}/ws/p2p/${x.id}`,
    http: `http://127.0.0.1:${o.basePort + 20 + i}`
  }))
  const info: DevGroupInfo = { groupId, creator: creator.id, genesis: genesisText, invite, relays }
  await writeFile(join(dir, 'group.json'), `${JSON.stringify(info, null, 2)}\n`)
  return { info, genesisFile, renewed, movedStores }
}

/**
 * Prepares (see prepareDevGroup) and starts each relay of a local group on
 * loopback as its own process: what `pnpm relay -- dev` and the demo run.
 */
export async function startDevGroup (o: DevGroupOptions): Promise<DevGroup> {
  const print = o.print ?? ((l: string) => { process.stdout.write(`${l}\n`) })
  const dir = resolve(o.dir)
  const { info, genesisFile, renewed, movedStores } = await prepareDevGroup(o)
  const relays = info.relays
  if (renewed !== undefined) {
    print(`a new dev group: ${renewed}. The old group's relay stores were moved aside, not deleted:`)
    for (const m of movedStores) print(`  ${m}`)
    print('  (delete them once you no longer need their data; tabs that opened the old group must reload to join the new one)')
  }

  const children: ChildProcess[] = []
  relays.forEach((r, i) => {
    const args = [
      ...process.execArgv, CLI, 'run',
      '--data', join(dir, `relay-${i}`),
      '--genesis', genesisFile,
      '--listen', `/ip4/127.0.0.1/tcp/${o.basePort + i},/ip4/127.0.0.1/tcp/${o.basePort + 10 + i}/ws`,
      '--peers', relays.filter(p => p !== r).map(p => p.tcp).join(','),
      '--http', `127.0.0.1:${o.basePort + 20 + i}`, '--exit-with-stdin',
      ...(o.procedures === undefined ? [] : ['--procedures', o.procedures])
    ]
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const prefix = (data: Buffer): void => { for (const line of data.toString().split('\n')) if (line !== '') print(`[relay-${i}] ${line}`) }
    child.stdout?.on('data', prefix)
    child.stderr?.on('data', prefix)
    child.on('exit', (code, signal) => { print(`[relay-${i}] exited (${signal ?? code})`) })
    children.push(child)
  })
  return {
    info,
    async stop () {
      await Promise.all(children.map(async c => {
        if (c.exitCode !== null || c.signalCode !== null) return
        // Closing stdin stops a relay without handing over: the whole group is going.
        await new Promise<void>(resolve => { c.once('exit', () => { resolve() }); c.stdin?.end() })
      }))
    }
  }
}

/** `tideline-relay dev`: start the group, print how to reach it, stop it on SIGINT/SIGTERM. */
export async function runDevGroup (o: DevGroupOptions): Promise<void> {
  const group = await startDevGroup(o)
  const lines = [
    `tideline dev group "${group.info.groupId}" (${group.info.relays.length} relays, data in ${resolve(o.dir)})`,
    ...group.info.relays.map((r, i) => `  relay-${i}  ${r.ws}\n           ${r.tcp}\n           ${r.http}/metrics`),
    `  invite (bearer, 30 days): ${group.info.invite.slice(0, 32)}… (full text in ${join(resolve(o.dir), 'group.json')})`,
    '  Ctrl-C stops all relays.'
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  const stop = (): void => { group.stop().then(() => { process.exit(0) }, () => { process.exit(1) }) }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
