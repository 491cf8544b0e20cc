import '@tideline/net-libp2p'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { NetClient, createGenesis, createInvite, encodeSigned, type SignedGenesis } from '@tideline/net-libp2p'
import { startLocalGroup, waitUntil, type ProcessGroup, type RelayProcess } from '@tideline/test-kit'
import { simRegistry } from '@tideline/sim'
import { processCpuMs, rssMiB } from './closed-loop.js'

/**
 * `pnpm bench groups`: what an idle group costs a relay process that hosts
 * many. Three relay processes start with one group (their main one), each
 * adds `groups - 1` more over its HTTP port (`POST /groups`: a genesis per
 * group, the three relays its voters), one transfer commits in every group
 * (so each has written its store and run its protocol), and then nothing
 * happens: over `seconds` the first relay's CPU time (user+system, /proc) is
 * measured, and its resident memory against the same relay with one group.
 * Run twice: with the voters going quiet when idle (the default), and with
 * quiescence off (`--quiesce-after-ms 0`: heartbeats every 200 ms forever),
 * side by side.
 */

export interface GroupsBenchOptions {
  readonly groups: number
  readonly seconds: number
  /**
   * How long the relays idle before a window is measured, once their groups are quiet: a group
   * goes on collecting its history for the retention window after its last call (`--retain-ms`,
   * 60 s by default), and an idle group is one past that.
   */
  readonly settleSeconds: number
}

export interface GroupsRun {
  readonly mode: 'quiet' | 'heartbeats'
  readonly groups: number
  /** One relay's CPU over the idle window, in % of one core: with its main group only, then with every group. */
  readonly cpuPctOne: number
  readonly cpuPctAll: number
  /** Resident memory (VmRSS) of that relay with one group and with every group, in MiB. */
  readonly rssOneMiB: number
  readonly rssAllMiB: number
  /** Groups that committed their transfer, and how many of the relay's groups were quiet when the window began. */
  readonly committed: number
  readonly quiet: number
  /** Direct-message frames the relay sent in the window, over every group. */
  readonly framesOut: number
}

export interface GroupsBenchResult {
  readonly quiet: GroupsRun
  readonly heartbeats: GroupsRun
}

const hash = (p: string): string => simRegistry.procedures.get(p)?.hash ?? ''
const TIMEOUTS = { attemptTimeoutMs: 3_000, timeoutMs: 20_000 }
/** Clients that commit the groups' transfers at once (each a libp2p peer of its own). */
const PARALLEL = 8

export async function benchGroups (o: GroupsBenchOptions, log: (line: string) => void): Promise<GroupsBenchResult> {
  const quiet = await run(o, 'quiet', log)
  const heartbeats = await run(o, 'heartbeats', log)
  return { quiet, heartbeats }
}

interface Rows { group: string, quiet: boolean, evaluated: number }

async function groupsOf (relay: RelayProcess): Promise<Rows[]> {
  return await (await fetch(`${relay.httpUrl}/groups`)).json() as Rows[]
}

async function framesOut (relay: RelayProcess): Promise<number> {
  const text = await (await fetch(`${relay.httpUrl}/metrics`)).text()
  let n = 0
  for (const m of text.matchAll(/^tideline_frames_total\{(?:group="[^"]*",)?dir="out"\} (\d+)$/gm)) n += Number(m[1])
  return n
}

/** One relay's CPU (% of a core) and frames sent over `seconds` of idling. */
async function idle (relay: RelayProcess, seconds: number): Promise<{ cpuPct: number, frames: number }> {
  const cpu0 = await processCpuMs(relay.pid)
  const frames0 = await framesOut(relay)
  const t0 = performance.now()
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  const cpu1 = await processCpuMs(relay.pid)
  const frames1 = await framesOut(relay)
  return { cpuPct: (cpu1 - cpu0) / (performance.now() - t0) * 100, frames: frames1 - frames0 }
}

async function run (o: GroupsBenchOptions, mode: 'quiet' | 'heartbeats', log: (line: string) => void): Promise<GroupsRun> {
  const group: ProcessGroup = await startLocalGroup({ relays: 3, groupId: 'bench-main', relayArgs: () => mode === 'quiet' ? [] : ['--quiesce-after-ms', '0'] })
  try {
    const relays = group.relays
    const first = relays[0] as RelayProcess
    // The main group commits once, then idles: the one-group baseline.
    const main = await group.startClient(TIMEOUTS)
    await main.call({ clientTxnId: 'main-1', procedure: 'transfer', hash: hash('transfer'), args: { from: 'a0', to: 'a1', amount: 1 } })
    await main.stop()
    await settle(relays, mode, 1, o.settleSeconds)
    const one = await idle(first, o.seconds)
    const rssOne = await rssMiB(first.pid)
    log(`${mode}: 1 group: relay-0 ${one.cpuPct.toFixed(2)}% of a core, ${rssOne.toFixed(1)} MiB resident, ${one.frames} frames sent in ${o.seconds} s`)
    // Every other group, added at run time on each relay, then one transfer in each.
    const creator = await generateKeyPair('Ed25519')
    const hosted: Array<{ id: string, genesis: SignedGenesis }> = []
    for (let i = 1; i < o.groups; i++) {
      const id = `team-${String(i).padStart(3, '0')}`
      hosted.push({ id, genesis: await createGenesis(creator, { groupId: id, voters: relays.map(r => r.id), registryHash: simRegistry.hash }) })
    }
    const added = performance.now()
    for (const r of relays) {
      for (const g of hosted) {
        const res = await fetch(`${r.httpUrl}/groups`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ genesis: encodeSigned(g.genesis) }) })
        if (res.status !== 201) throw new Error(`relay ${r.index}: adding ${g.id} answered ${res.status} ${await res.text()}`)
      }
    }
    log(`${mode}: added ${hosted.length} groups to each relay in ${((performance.now() - added) / 1000).toFixed(1)} s`)
    let committed = 0
    for (let i = 0; i < hosted.length; i += PARALLEL) {
      await Promise.all(hosted.slice(i, i + PARALLEL).map(async (g, j) => {
        const invite = await createInvite(first.key, g.genesis, { expiresAt: Date.now() + 3_600_000 })
        const privateKey = await generateKeyPair('Ed25519')
        const c = await NetClient.start({ privateKey, voters: relays.map(r => r.tcp), invite, home: (i + j) % relays.length, ...TIMEOUTS })
        try {
          const r = await c.call({ clientTxnId: `${g.id}-1`, procedure: 'transfer', hash: hash('transfer'), args: { from: 'a0', to: 'a1', amount: 1 } })
          if (r.status === 'committed') committed++
        } finally {
          await c.stop()
        }
      }))
    }
    log(`${mode}: ${committed} of ${hosted.length} hosted groups committed their transfer`)
    const quiet = await settle(relays, mode, o.groups, o.settleSeconds)
    const all = await idle(first, o.seconds)
    const rssAll = await rssMiB(first.pid)
    log(`${mode}: ${o.groups} groups (${quiet} quiet): relay-0 ${all.cpuPct.toFixed(2)}% of a core, ${rssAll.toFixed(1)} MiB resident, ${all.frames} frames sent in ${o.seconds} s`)
    return { mode, groups: o.groups, cpuPctOne: one.cpuPct, cpuPctAll: all.cpuPct, rssOneMiB: rssOne, rssAllMiB: rssAll, committed, quiet, framesOut: all.frames }
  } finally {
    await group.stop()
  }
}

/**
 * Waits for the relays to idle: with quiescence, until every group on every
 * relay is quiet (at most 60 s); then `seconds` more. Returns the first
 * relay's quiet groups.
 */
async function settle (relays: readonly RelayProcess[], mode: 'quiet' | 'heartbeats', groups: number, seconds: number): Promise<number> {
  if (mode === 'quiet') {
    await waitUntil('every group on every relay is quiet', async () => {
      const rows = await Promise.all(relays.map(groupsOf))
      return rows.every(r => r.length === groups && r.every(g => g.quiet))
    }, 60_000).catch(() => {})
  }
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  return (await groupsOf(relays[0] as RelayProcess)).filter(g => g.quiet).length
}
