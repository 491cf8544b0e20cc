import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { summariseProfiles } from './net.js'
import { chromium } from '@playwright/test'
import { createRegistry, type ProcedureMap } from '@tideline/core'
import { requireChromium } from '@tideline/e2e/support/chromium'
import { startHarness } from '@tideline/e2e/support/harness-server'
import { encodeSigned, type NetClient } from '@tideline/net-libp2p'
import { startLocalGroup, type ProcessGroup, type RelayProcess } from '@tideline/test-kit'

/** The procedures of the browser test page (a tab's registry must match the group's); `put` builds the history. */
const PROCEDURES = fileURLToPath(new URL('../../../e2e/pages/db/procedures.ts', import.meta.url))
/** The hash of the page's `put`, as the relays compute it (same module, same toolchain). */
async function putHash (): Promise<string> {
  const mod = await import(PROCEDURES) as { procedures: ProcedureMap }
  return createRegistry(mod.procedures).procedures.get('put')?.hash ?? ''
}

export interface JoinBenchOptions {
  /** Transactions of history before the newcomers join. */
  readonly txns: number
  readonly keys: number
  readonly valueBytes: number
  /** History replayed from genesis by a newcomer to a group that keeps everything (then scaled to `txns`). */
  readonly replayTxns: number
  readonly clients: number
  /** Profile the tab's page (Chrome DevTools Protocol) from open to synced and print where its CPU went. */
  readonly profile?: boolean
}

export interface JoinBenchResult {
  readonly historyTxnPerSec: number
  /** Spawn of a new relay process until it is a voter and has evaluated the whole history. */
  readonly relayS: number
  readonly relaySnapshots: number
  /** `openDatabase` in a new tab until `synced()` resolves. */
  readonly tabS: number
  readonly tabSnapshots: number
  /** A new replica replaying `replayTxns` from genesis, and that scaled to `txns`. */
  readonly replayMeasuredS: number
  readonly replayS: number
}

interface DbHarness {
  open(o: { peers: string[], invite: string, creator: string }): Promise<unknown>
  synced(timeoutMs?: number): Promise<{ ts: string, before: number }>
  status(): { counters: Record<string, number> }
}
declare const window: { dbHarness: DbHarness | undefined }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** `n` blind writes of `bytes`-byte values over `keys` keys, `clients` at a time; returns txn/s. */
async function buildHistory (group: ProcessGroup, n: number, keys: number, bytes: number, clients: number): Promise<number> {
  const nodes: NetClient[] = []
  for (let i = 0; i < 4; i++) nodes.push(await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 30_000 }))
  const value = 'x'.repeat(bytes)
  const hash = await putHash()
  let next = 0
  const t0 = performance.now()
  try {
    await Promise.all(Array.from({ length: clients }, async (_, c) => {
      const node = nodes[c % nodes.length] as NetClient
      while (next < n) {
        const i = next++
        await node.call({ clientTxnId: `h${i}`, procedure: 'put', hash, args: { k: String(i % keys), v: value } })
      }
    }))
    return n / ((performance.now() - t0) / 1000)
  } finally {
    for (const c of nodes) await c.stop()
  }
}

/** Spawn to voter with the whole history evaluated. */
async function relayJoin (group: ProcessGroup, args: readonly string[], wantVoter: boolean): Promise<{ s: number, relay: RelayProcess }> {
  const target = (await (group.relays[0] as RelayProcess).health()).evaluated
  const t0 = performance.now()
  const relay = await group.addRelay(args)
  for (;;) {
    const h = await relay.health().catch(() => undefined)
    if (h !== undefined && h.evaluated >= target && (!wantVoter || h.role === 'voter')) break
    await sleep(50)
  }
  return { s: (performance.now() - t0) / 1000, relay }
}

/**
 * `pnpm bench join`: how long a newcomer takes to join a group with a long
 * history. The group's relays keep 2 s of history, so after `txns` blind
 * writes of `valueBytes` over `keys` keys, a new relay process (voted in)
 * and a new Chromium tab (`synced()`) both start from a voter's snapshot.
 * Replaying from genesis is measured on a second group that keeps
 * everything, with `replayTxns` of the same history, and scaled linearly.
 */
export async function benchJoin (o: JoinBenchOptions, log: (line: string) => void): Promise<JoinBenchResult> {
  // Replay from genesis: a read replica (never a voter) joining a group that collected nothing.
  let replayMeasuredS: number
  {
    const group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'bench-join-replay', relayArgs: () => ['--retain-ms', '3600000'] })
    try {
      const rate = await buildHistory(group, o.replayTxns, o.keys, o.valueBytes, o.clients)
      log(`replay group: ${o.replayTxns} txns of history at ${Math.round(rate)} txn/s`)
      const r = await relayJoin(group, ['--observer'], false)
      replayMeasuredS = r.s
      log(`replay group: a read replica replayed ${o.replayTxns} txns from genesis in ${r.s.toFixed(1)} s (snapshots installed: ${(await r.relay.metrics()).get('tideline_snapshots_total{dir="installed"}') ?? 0})`)
    } finally {
      await group.stop()
    }
  }
  // The history is meant to be old: its windows (2 s of history, 10 s + 5 s of exactly-once
  // records, in place of 60 s and 24 h) pass within the bench rather than in days.
  const group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'bench-join', relayArgs: () => ['--retain-ms', '2000'], txnRetentionMs: 10_000, txnSkewMs: 5_000 })
  const harness = await startHarness()
  const browser = await chromium.launch(requireChromium(() => chromium.executablePath()))
  try {
    const rate = await buildHistory(group, o.txns, o.keys, o.valueBytes, o.clients)
    log(`snapshot group: ${o.txns} txns of history at ${Math.round(rate)} txn/s`)
    // Past the retention windows: every voter collected the batches a replay would need, and the
    // history's exactly-once records.
    const collected = performance.now()
    for (;;) {
      const stats = await Promise.all(group.relays.map(async x => x.storeStats()))
      if (stats.every(s => s.records === 0 && s.batches < 100) || performance.now() - collected > 90_000) {
        log(`snapshot group: after ${((performance.now() - collected) / 1000).toFixed(0)} s the relays hold ${stats.map(s => `${s.values} values, ${s.batches} batches, ${s.records} records`).join('; ')}`)
        break
      }
      await sleep(1_000)
    }
    const r = await relayJoin(group, [], true)
    const relaySnapshots = (await r.relay.metrics()).get('tideline_snapshots_total{dir="installed"}') ?? 0
    for (const l of r.relay.logs.filter(l => /"snapshot-|"started"|"joined"/.test(l)).slice(0, 12)) log(`  new relay: ${l.slice(0, 160)}`)
    log(`snapshot group: a new relay was voted in with the history in ${r.s.toFixed(2)} s (snapshots installed: ${relaySnapshots})`)
    const page = await (await browser.newContext()).newPage()
    await page.goto(`${harness.url}/db/`)
    await page.waitForFunction(() => window.dbHarness !== undefined)
    const opts = { peers: group.relays.map(x => x.ws), invite: encodeSigned(group.invite), creator: group.creatorId }
    page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning' || m.text().startsWith('tideline ')) log(`  tab: ${m.text().slice(0, 200)}`) })
    // Where the tab's time goes: its counters every second while it syncs.
    const t0 = Date.now()
    const poll = setInterval(() => {
      void page.evaluate(() => window.dbHarness?.status()).then(st => {
        if (st !== undefined) log(`  tab at ${((Date.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(st.counters)}`)
      }, () => {})
    }, 1_000)
    const cdp = o.profile === true ? await page.context().newCDPSession(page) : undefined
    if (cdp !== undefined) {
      await cdp.send('Profiler.enable')
      await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
      await cdp.send('Profiler.start')
    }
    const tabMs = await page.evaluate(async opts => {
      const t0 = performance.now()
      await (window.dbHarness as DbHarness).open(opts)
      // Long enough to see how long it takes however long that is (the database's default is 30 s).
      await (window.dbHarness as DbHarness).synced(300_000)
      return performance.now() - t0
    }, opts).finally(() => { clearInterval(poll) }).catch(async (err: unknown) => {
      const st = await page.evaluate(() => (window.dbHarness as DbHarness).status())
      const relays = await Promise.all(group.relays.map(async x => x.health()))
      throw new Error(`the tab did not sync: ${(err as Error).message}; its status: ${JSON.stringify(st)}; relays: ${JSON.stringify(relays.map(h => ({ e: h.epoch, v: h.voters.length, wm: h.watermark, ev: h.evaluated })))}`)
    })
    const tabSnapshots = (await page.evaluate(() => (window.dbHarness as DbHarness).status())).counters['snapshots-installed'] ?? 0
    if (cdp !== undefined) {
      const { profile } = await cdp.send('Profiler.stop')
      const dir = await mkdtemp(join(tmpdir(), 'tideline-join-profile-'))
      await writeFile(join(dir, 'tab.cpuprofile'), JSON.stringify(profile))
      const prof = await summariseProfiles(dir)
      log(`tab page profile (${dir}), self time:\n${prof.top.map(p => `  ${(100 * p.share).toFixed(1).padStart(5)}%  ${p.name}`).join('\n')}\nby component:\n${prof.categories.map(c => `  ${(100 * c.share).toFixed(1).padStart(5)}%  ${c.name}`).join('\n')}`)
    }
    for (const x of group.relays) for (const l of x.logs.filter(l => /snapshot-declined|snapshot-export/.test(l)).slice(-6)) log(`  relay-${x.index}: ${l.slice(0, 200)}`)
    log(`snapshot group: a new tab was synced in ${(tabMs / 1000).toFixed(2)} s (snapshots installed: ${tabSnapshots})`)
    return {
      historyTxnPerSec: rate,
      relayS: r.s,
      relaySnapshots,
      tabS: tabMs / 1000,
      tabSnapshots,
      replayMeasuredS,
      replayS: replayMeasuredS * o.txns / o.replayTxns
    }
  } finally {
    await browser.close()
    await harness.close()
    await group.stop()
  }
}
