import { fileURLToPath } from 'node:url'
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { encodeSigned } from '@tideline/net-libp2p'
import { healthOrNone, startLocalGroup, type ProcessGroup } from '@tideline/test-kit'
import { harnessPage } from '../support/harness-url.js'

// Bounded history in real Chromium: the relays keep 300 ms of history below the voters' durable
// frontier, so a tab opened after a history cannot replay it from anyone and syncs by snapshot.

const PROCEDURES = fileURLToPath(new URL('../pages/db/procedures.ts', import.meta.url))
const TOTAL = 8 * 100

const pageUrl = (): string => harnessPage('db')

interface Tab { readonly page: Page, readonly context: BrowserContext }

let group: ProcessGroup
let openOpts: { peers: string[], invite: string, creator: string }

test.beforeAll(async () => {
  group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'db-snapshot', relayArgs: () => ['--retain-ms', '300'] })
  openOpts = { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId }
})

test.afterAll(async () => {
  await group?.stop()
})

async function openTab (browser: Browser): Promise<Tab> {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(pageUrl())
  await page.waitForFunction(() => window.dbHarness !== undefined)
  await page.evaluate(async o => window.dbHarness.open(o), openOpts)
  return { page, context }
}

test('a tab opened after the history was collected syncs by snapshot; no callback after synced shows an older state', async ({ browser }) => {
  const writer = await openTab(browser)
  await writer.page.evaluate(async () => window.dbHarness.online())
  const r = await writer.page.evaluate(async () => window.dbHarness.transfers(120, 6))
  expect(r.failed).toEqual([])
  // Every relay collected batches of that history: nobody can hand a newcomer the thunks from the start.
  await expect.poll(async () => Math.min(...await Promise.all(group.relays.map(async x => (await x.metrics()).get('tideline_gc_removed_total{kind="batches"}') ?? 0))), { timeout: 20_000 }).toBeGreaterThan(0)

  const late = await openTab(browser)
  const synced = await late.page.evaluate(async () => window.dbHarness.synced())
  const st = await late.page.evaluate(() => window.dbHarness.status())
  expect(st.counters['snapshots-installed']).toBe(1)
  // More history after it, which the late tab evaluates itself.
  await writer.page.evaluate(async () => window.dbHarness.transfers(30, 3))
  await expect.poll(async () => {
    const relays = await healthOrNone(group.relays)
    if (relays === undefined) return false
    const mine = await late.page.evaluate(() => window.dbHarness.status())
    return relays.every(h => h.evaluated === mine.evaluated && h.digest === mine.digest && h.unevaluated === 0)
  }, { timeout: 30_000, intervals: [200] }).toBe(true)
  // Caught up, its status says so: live, every known batch evaluated.
  const sync = (await late.page.evaluate(() => window.dbHarness.status())).sync
  expect(sync.phase).toBe('live')
  expect(sync.received).toBe(sync.total)
  const seen = await late.page.evaluate(() => window.dbHarness.seen())
  const after = seen.slice(synced.before)
  expect(after.length).toBeGreaterThan(0)
  // Every state the subscription showed is consistent, and none after synced is older than it.
  expect(seen.filter(x => x.total !== TOTAL)).toEqual([])
  expect(after.filter(x => x.ts < synced.ts).map(x => x.ts)).toEqual([])
  for (let i = 1; i < after.length; i++) expect((after[i] as { ts: string }).ts >= (after[i - 1] as { ts: string }).ts).toBe(true)
  expect(await late.page.evaluate(() => window.dbHarness.errors())).toEqual([])
  await writer.context.close()
  await late.context.close()
})
