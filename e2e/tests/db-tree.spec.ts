import { fileURLToPath } from 'node:url'
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { encodeSigned } from '@tideline/net-libp2p'
import { startLocalGroup, type ProcessGroup } from '@tideline/test-kit'
import { harnessPage } from '../support/harness-url.js'

// The dissemination tree in real Chromium (issue 23, docs/design/tabs.md §2): six observer tabs
// of @tideline/db join the tree below three relay processes. One hangs under the root relay; the
// others under tabs, reached over WebRTC through a relay's circuit. Most of the batches a tab takes
// come from another tab, each checked against its coordinator's signature, and all tabs agree.

const PROCEDURES = fileURLToPath(new URL('../pages/db/procedures.ts', import.meta.url))
const TABS = 6

interface Tab { readonly page: Page, readonly context: BrowserContext, readonly id: string }

let group: ProcessGroup
let openOpts: { peers: string[], invite: string, creator: string }

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'db-tree' })
  openOpts = { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId }
})

test.afterAll(async () => {
  await group?.stop()
})

async function openTab (browser: Browser): Promise<Tab> {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(harnessPage('db'))
  await page.waitForFunction(() => window.dbHarness !== undefined)
  const { id } = await page.evaluate(async o => window.dbHarness.open(o), { ...openOpts, tree: true })
  await page.evaluate(async () => window.dbHarness.online())
  return { page, context, id }
}

const status = async (t: Tab): Promise<{ counters: Readonly<Record<string, number>>, tree: { readonly parent?: string, readonly children: readonly string[] }, digest: string }> => await t.page.evaluate(() => window.dbHarness.status())

test('six observer tabs in the tree: most batches a tab takes come from another tab, and all tabs agree', async ({ browser }) => {
  test.setTimeout(180_000)
  const tabs: Tab[] = []
  for (let i = 0; i < TABS; i++) tabs.push(await openTab(browser))
  const ids = new Set(tabs.map(t => t.id))
  // Every tab finds a place; at least half hang under another tab (the root relay takes one).
  await expect.poll(async () => {
    const st = await Promise.all(tabs.map(status))
    return { placed: st.filter(s => s.tree.parent !== undefined).length, underTabs: st.filter(s => ids.has(s.tree.parent as string)).length }
  }, { timeout: 90_000, intervals: [500] }).toEqual({ placed: TABS, underTabs: TABS - 1 })
  const before = await Promise.all(tabs.map(status))
  const r = await tabs[0]?.page.evaluate(async () => window.dbHarness.transfers(40, 4))
  expect(r?.failed).toEqual([])
  // Every tab reaches the relays' digest.
  await expect.poll(async () => {
    const digest = (await group.relays[0]?.health())?.digest
    return (await Promise.all(tabs.map(status))).filter(s => s.digest === digest).length
  }, { timeout: 60_000, intervals: [500] }).toBe(TABS)
  const after = await Promise.all(tabs.map(status))
  const delta = (i: number, k: string): number => (after[i]?.counters[k] ?? 0) - (before[i]?.counters[k] ?? 0)
  const received = tabs.reduce((n, _, i) => n + delta(i, 'batches-received'), 0)
  const fromTabs = tabs.reduce((n, _, i) => n + delta(i, 'batches-from-members'), 0)
  test.info().annotations.push({ type: 'tree', description: JSON.stringify({ received, fromTabs, perTab: tabs.map((_, i) => [delta(i, 'batches-received'), delta(i, 'batches-from-members')]) }) })
  // 40 calls, 4 at a time through one relay: batches of up to 4 (13 in a run here), every one to every tab.
  expect(received).toBeGreaterThanOrEqual(TABS * 10)
  expect(fromTabs / received).toBeGreaterThanOrEqual(0.5)
  for (let i = 0; i < TABS; i++) expect(after[i]?.counters['forged-batch'] ?? 0).toBe(0)
  // The bank is whole in every tab.
  for (const t of tabs) {
    const values = await t.page.evaluate(async () => window.dbHarness.read('strict'))
    expect(Object.values(values).reduce((a, b) => a + b, 0)).toBe(800)
  }
  for (const t of tabs) expect(await t.page.evaluate(() => window.dbHarness.errors())).toEqual([])
  for (const t of tabs) await t.context.close()
})
