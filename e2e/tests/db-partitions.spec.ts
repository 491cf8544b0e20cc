import { fileURLToPath } from 'node:url'
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { encodeSigned } from '@tideline/net-libp2p'
import { startLocalGroup, type ProcessGroup } from '@tideline/test-kit'
import { harnessPage } from '../support/harness-url.js'

// @tideline/db in real Chromium in a partitioned group: three relay processes
// (one replica set: each holds every partition), a tab that follows one
// partition and a tab that follows all. The first receives only the thunks it
// evaluates (projections of batches), and still reads every partition exactly.

const PROCEDURES = fileURLToPath(new URL('../pages/db/procedures.ts', import.meta.url))
const TOTAL = 8 * 100
// Accounts pinned two to a partition (an account's key is its own scope).
const PARTITIONS = { count: 4, depth: 2, assign: { 'acct/a0': 0, 'acct/a1': 0, 'acct/a2': 1, 'acct/a3': 1, 'acct/a4': 2, 'acct/a5': 2, 'acct/a6': 3, 'acct/a7': 3 } }

interface Tab { readonly page: Page, readonly context: BrowserContext }

let group: ProcessGroup
let openOpts: { peers: string[], invite: string, creator: string }

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'db-partitions', partitions: PARTITIONS })
  openOpts = { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId }
})

test.afterAll(async () => {
  await group?.stop()
})

async function openTab (browser: Browser, partitions?: number[], watch?: string[]): Promise<Tab> {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(harnessPage('db'))
  await page.waitForFunction(() => window.dbHarness !== undefined)
  await page.evaluate(async o => window.dbHarness.open(o), { ...openOpts, ...(partitions === undefined ? {} : { partitions }), ...(watch === undefined ? {} : { watch }) })
  await page.evaluate(async () => window.dbHarness.online())
  return { page, context }
}

const read = async (t: Tab): Promise<Record<string, number>> => await t.page.evaluate(async () => window.dbHarness.read('strict'))
const counters = async (t: Tab): Promise<Record<string, number>> => (await t.page.evaluate(() => window.dbHarness.status())).counters

test('a tab of one partition receives only its thunks, evaluates them like the full tab, and reads every partition exactly', async ({ browser }) => {
  const one = await openTab(browser, [0], ['a0', 'a1'])
  const full = await openTab(browser)
  // In partition 0 only (the tab of partition 0 calls), across 0 and 2, and in partitions 1 to 3 only.
  const [mine, across, others] = await Promise.all([
    one.page.evaluate(async () => window.dbHarness.transfers(12, 3, ['a0', 'a1'])),
    full.page.evaluate(async () => window.dbHarness.transfers(8, 2, ['a0', 'a4'])),
    full.page.evaluate(async () => window.dbHarness.transfers(30, 4, ['a2', 'a3', 'a4', 'a5', 'a6', 'a7']))
  ])
  for (const r of [mine, across, others]) expect(r.failed).toEqual([])
  // Strict reads: the whole bank through either tab (the one-partition tab reads the rest from the relays), and
  // partition 0's accounts the same in both.
  await expect.poll(async () => {
    const [a, b] = await Promise.all([read(one), read(full)])
    return { one: Object.values(a).reduce((x, y) => x + y, 0), full: Object.values(b).reduce((x, y) => x + y, 0), same: a['acct/a0'] === b['acct/a0'] && a['acct/a1'] === b['acct/a1'] }
  }, { timeout: 30_000, intervals: [300] }).toEqual({ one: TOTAL, full: TOTAL, same: true })
  const c1 = await counters(one)
  const c2 = await counters(full)
  // Every call of partition 0 reached the one-partition tab; none of the 30 others did, and the full tab got them all. (A call
  // whose attempt timed out on a busy machine is minted again by another voter: a second thunk, a no-op where it runs.)
  const received = (c: Record<string, number>): number => c['thunks-received'] ?? 0
  expect(received(c1)).toBeGreaterThanOrEqual(12 + 8)
  expect(received(c2) - received(c1)).toBeGreaterThanOrEqual(30)
  expect(c1['projection-refused'] ?? 0).toBe(0)
  expect(c2['projection-refused'] ?? 0).toBe(0)
  for (const t of [one, full]) expect(await t.page.evaluate(() => window.dbHarness.errors())).toEqual([])
  // Its subscriptions see partition 0; one elsewhere would never be refreshed, so it is refused.
  const seen = await one.page.evaluate(() => window.dbHarness.seen())
  expect(seen.length).toBeGreaterThan(0)
  expect(await one.page.evaluate(() => window.dbHarness.trySubscribe('a3'))).toBe('PartitionNotHeldError')
  expect(await one.page.evaluate(() => window.dbHarness.trySubscribe('a1'))).toBeUndefined()
  expect(await full.page.evaluate(() => window.dbHarness.trySubscribe('a3'))).toBeUndefined()
  for (const t of [one, full]) await t.context.close()
})
