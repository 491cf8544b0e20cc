import { fileURLToPath } from 'node:url'
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { fromHex } from '@tideline/core'
import { ED25519_EDGE_CASES, STRICT_VERDICTS } from '@tideline/core/ed25519-cases'
import { encodeSigned } from '@tideline/net-libp2p'
import { healthOrNone, startLocalGroup, type ProcessGroup } from '@tideline/test-kit'
import { harnessPage } from '../support/harness-url.js'

// @tideline/db in real Chromium: three relay processes (voters, LevelStore),
// pages in separate browser contexts, each with its replica and evaluation in
// a module Web Worker (IndexedDB).

const PROCEDURES = fileURLToPath(new URL('../pages/db/procedures.ts', import.meta.url))
const TOTAL = 8 * 100

const pageUrl = (): string => harnessPage('db')

interface Tab { readonly page: Page, readonly context: BrowserContext }

let group: ProcessGroup
let openOpts: { peers: string[], invite: string, creator: string }

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'db-browser' })
  openOpts = { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId }
})

test.afterAll(async () => {
  await group?.stop()
})

async function openTab (browser: Browser, context?: BrowserContext): Promise<Tab & { id: string, slot: number | undefined }> {
  const ctx = context ?? await browser.newContext()
  const page = await ctx.newPage()
  await page.goto(pageUrl())
  await page.waitForFunction(() => window.dbHarness !== undefined)
  const r = await page.evaluate(async o => window.dbHarness.open(o), openOpts)
  return { page, context: ctx, ...r }
}

const status = async (t: Tab) => t.page.evaluate(() => window.dbHarness.status())
const seen = async (t: Tab) => t.page.evaluate(() => window.dbHarness.seen())

/** Waits until every tab has evaluated as much as the relays and all agree on the digest. */
async function converged (tabs: readonly Tab[]): Promise<void> {
  await expect.poll(async () => {
    // A health request that times out (a relay busy for 2 s on a loaded machine) is "not yet", not a failure.
    const relays = await healthOrNone(group.relays)
    if (relays === undefined) return false
    const pages = await Promise.all(tabs.map(status))
    const digests = new Set([...relays.map(h => `${h.evaluated}:${h.digest}`), ...pages.map(s => `${s.evaluated}:${s.digest}`)])
    return digests.size === 1 && relays.every(h => h.inflight === 0 && h.unevaluated === 0)
  }, { timeout: 30_000, intervals: [200] }).toBe(true)
}

test('three tabs transfer concurrently: every subscription callback in every tab sees the exact bank total', async ({ browser }) => {
  const tabs = await Promise.all([openTab(browser), openTab(browser), openTab(browser)])
  expect(new Set(tabs.map(t => t.id)).size).toBe(3)
  await Promise.all(tabs.map(async t => t.page.evaluate(async () => window.dbHarness.online())))
  const results = await Promise.all(tabs.map(async t => t.page.evaluate(async () => window.dbHarness.transfers(30, 6))))
  for (const r of results) {
    expect(r.failed).toEqual([])
    expect(r.committed + r.aborted).toBe(30)
  }
  expect(results.reduce((s, r) => s + r.committed, 0)).toBeGreaterThan(60)
  await converged(tabs)
  for (const t of tabs) {
    const s = await seen(t)
    // Each tab saw many states (every run it evaluated that touched an account), each consistent.
    expect(s.length).toBeGreaterThan(3)
    expect(s.filter(x => x.total !== TOTAL)).toEqual([])
    expect(await t.page.evaluate(() => window.dbHarness.errors())).toEqual([])
    const strict = await t.page.evaluate(async () => window.dbHarness.read('strict'))
    expect(Object.values(strict).reduce((a, b) => a + b, 0)).toBe(TOTAL)
    expect((await status(t)).role).toBe('observer')
  }
  for (const t of tabs) await t.context.close()
})

test('a reload keeps the identity and the data and shows the data before reconnecting; two tabs never share a replica', async ({ browser }) => {
  const context = await browser.newContext()
  const t0 = Date.now()
  const step = (m: string): void => { if (process.env.TIDELINE_DEBUG !== undefined) console.log(`${Date.now() - t0} ms ${m}`) }
  const tab = await openTab(browser, context)
  tab.page.on('console', m => { step(`page: ${m.text()}`) })
  step('opened')
  await tab.page.evaluate(async () => window.dbHarness.online())
  const r = await tab.page.evaluate(async () => window.dbHarness.transfers(10, 2))
  expect(r.failed).toEqual([])
  await converged([tab])
  step('const before = await')
  const before = await tab.page.evaluate(async () => window.dbHarness.read('snapshot'))
  // A second tab of the same profile gets its own slot, identity and IndexedDB replica.
  step('const other = await')
  const other = await openTab(browser, context)
  expect(other.slot).not.toBe(tab.slot)
  expect(other.id).not.toBe(tab.id)
  step('await other.page.close()')
  await other.page.close()

  // Every relay is down across the reload: the tab must serve its data from its own replica.
  // The whole group goes down at once: nobody to hand over to, so no SIGTERM handover (as the dev group stops).
  await Promise.all(group.relays.map(async r => r.shutdown()))
  step('await tab.page.reload()')
  await tab.page.reload()
  await tab.page.waitForFunction(() => window.dbHarness !== undefined)
  step('const again = await')
  const again = await tab.page.evaluate(async o => window.dbHarness.open(o), openOpts)
  expect(again.id).toBe(tab.id)
  expect(again.slot).toBe(tab.slot)
  await expect.poll(async () => (await seen(tab)).length).toBeGreaterThan(0)
  const first = (await seen(tab))[0]
  // Just reopened with every relay down: connecting (not yet offline), and the data is there.
  expect(first?.network).toBe('connecting')
  expect(first?.values).toEqual(before)
  await expect.poll(async () => (await status(tab)).network, { timeout: 15_000 }).toBe('offline')
  step('restart relays')
  await Promise.all(group.relays.map(async r => r.start()))
  await expect.poll(async () => (await status(tab)).network, { timeout: 20_000 }).toBe('online')
  step('const more = await')
  const more = await tab.page.evaluate(async () => window.dbHarness.transfers(5, 1))
  expect(more.failed).toEqual([])
  await converged([tab])
  await context.close()
})

test('a tab taken offline says so, its call waits, and it catches up after coming back', async ({ browser }) => {
  const tabs = await Promise.all([openTab(browser), openTab(browser), openTab(browser)])
  const [a, b, c] = tabs
  await Promise.all(tabs.map(async t => t.page.evaluate(async () => window.dbHarness.online())))
  await converged(tabs)
  await c.context.setOffline(true)
  await expect.poll(async () => (await status(c)).network, { timeout: 20_000 }).toBe('offline')
  const evaluatedOffline = (await status(c)).evaluated
  await c.page.evaluate(() => { window.dbHarness.startCall() })
  const r = await Promise.all([a, b].map(async t => t.page.evaluate(async () => window.dbHarness.transfers(20, 4))))
  expect(r.flatMap(x => x.failed)).toEqual([])
  // Nothing reached c meanwhile, and its call is still waiting.
  expect((await status(c)).evaluated).toBe(evaluatedOffline)
  expect(await c.page.evaluate(() => window.dbHarness.pending())).toBeUndefined()
  await c.context.setOffline(false)
  await expect.poll(async () => (await c.page.evaluate(() => window.dbHarness.pending()))?.status, { timeout: 30_000 }).toBe('committed')
  await converged(tabs)
  expect((await status(c)).evaluated).toBeGreaterThan(evaluatedOffline + 20)
  for (const t of tabs) expect((await seen(t)).filter(x => x.total !== TOTAL)).toEqual([])
  for (const t of tabs) await t.context.close()
})

test('signed calls: Chromium\'s verdicts on the twelve Ed25519 edge cases are the relays\' (only case 3 holds)', async ({ browser }) => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(pageUrl())
  await page.waitForFunction(() => window.dbHarness !== undefined)
  // Each case's key as the peer id a caller would claim.
  const cases = ED25519_EDGE_CASES.map(c => ({ id: peerIdFromPublicKey(publicKeyFromRaw(fromHex(c.publicKey))).toString(), message: c.message, signature: c.signature }))
  expect(await page.evaluate(async cs => window.dbHarness.callVerdicts(cs), cases)).toEqual(STRICT_VERDICTS)
  await context.close()
})

test('an admin tab revokes another tab: that tab is hung up on and its calls refused by name; a writer tab may not revoke', async ({ browser }) => {
  const open = async (invite: string): Promise<Tab & { id: string }> => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(pageUrl())
    await page.waitForFunction(() => window.dbHarness !== undefined)
    const r = await page.evaluate(async o => window.dbHarness.open(o), { ...openOpts, invite })
    await page.evaluate(async () => window.dbHarness.online())
    return { page, context, ...r }
  }
  const admin = await open(encodeSigned(await group.createInvite({ role: 'admin', name: 'ada' })))
  const writerInvite = encodeSigned(await group.createInvite({ role: 'writer' }))
  const writer = await open(writerInvite)
  expect(await writer.page.evaluate(async () => window.dbHarness.transferOnce())).toBe('committed')
  // A writer asking is refused by the voter it asks.
  expect(await writer.page.evaluate(async id => window.dbHarness.revoke({ peer: id }), admin.id)).toEqual({ error: 'PermissionDeniedError' })
  const before = Math.max(...(await Promise.all(group.relays.map(async r => (await r.health()).epoch))))
  // The admin tab (no voter) revokes the writer tab and its invite through its home voter, in one epoch change.
  const r = await admin.page.evaluate(async o => window.dbHarness.revoke(o), { peer: writer.id, invite: writerInvite })
  expect(r.epoch).toBeGreaterThan(before)
  await expect.poll(async () => (await Promise.all(group.relays.map(async x => (await x.health()).revoked))).every(n => n === 2), { timeout: 15_000 }).toBe(true)
  await expect.poll(async () => writer.page.evaluate(async () => window.dbHarness.transferOnce()), { timeout: 20_000 }).toMatch(/^PermissionDeniedError: .*revoked/)
  // The relays the tab was connected to hung up on it when they installed the epoch.
  const hungUp = await Promise.all(group.relays.map(async x => (await x.metrics()).get('tideline_events_total{event="hung-up-revoked"}') ?? 0))
  expect(hungUp.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1)
  expect(await admin.page.evaluate(async () => window.dbHarness.transferOnce())).toBe('committed')
  await admin.context.close()
  await writer.context.close()
})

test('a worker that fails surfaces as WorkerFailedError and a failed status, never silently', async ({ browser }) => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(pageUrl())
  await page.waitForFunction(() => window.dbHarness !== undefined)
  await page.evaluate(async o => window.dbHarness.open({ ...o, crashable: true }), openOpts)
  await page.evaluate(async () => window.dbHarness.online())
  const r = await page.evaluate(async () => window.dbHarness.crashWorker())
  expect(r.name).toBe('WorkerFailedError')
  expect(r.failed).toMatch(/injected worker crash/)
  await context.close()
})
