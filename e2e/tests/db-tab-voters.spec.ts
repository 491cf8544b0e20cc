import { readdir } from 'node:fs/promises'
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { startSignallingRelay, type RelayProcess } from '@tideline/test-kit'
import { harnessPage } from '../support/harness-url.js'

// A group with no server member (issue 23, docs/design/tabs.md §3–4): three tabs of @tideline/db are its
// voters, and one relay process runs only as WebRTC signalling and circuit relay: no member, no store.
// The first tab founds the group (its genesis, itself the only voter) and invites the other two with the
// voter role; they are voted in. Then: concurrent transfers from every tab, the bank exact in each; one
// voter tab hidden hands over (an epoch without it) and, shown again, is voted back in; one voter tab
// closed is voted out, and commits go on.

interface Tab { readonly page: Page, readonly context: BrowserContext, readonly id: string }

let signal: { readonly relay: RelayProcess, stop(): Promise<void> }

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  signal = await startSignallingRelay()
})

test.afterAll(async () => {
  await signal?.stop()
})

async function openTab (browser: Browser, o: Record<string, unknown>): Promise<Tab> {
  const context = await browser.newContext()
  const page = await context.newPage()
  page.on('console', m => { if (m.text().includes('hand-over') || m.text().includes('ask-to-vote')) test.info().annotations.push({ type: 'console', description: m.text() }) })
  await page.goto(harnessPage('db'))
  await page.waitForFunction(() => window.dbHarness !== undefined)
  const { id } = await page.evaluate(async x => window.dbHarness.open(x as Parameters<typeof window.dbHarness.open>[0]), { role: 'voter', ...o })
  await page.evaluate(async () => window.dbHarness.online())
  return { page, context, id }
}

type Status = Awaited<ReturnType<typeof status>>
const status = async (t: Tab): Promise<{ role: string, epoch: number, voters: number, digest: string, handOver?: { visible: boolean, handovers: number, handedOver: number, asks: number } }> =>
  await t.page.evaluate(() => {
    const s = window.dbHarness.status()
    return { role: s.role, epoch: s.epoch, voters: s.voters, digest: s.digest, ...(s.handOver === undefined ? {} : { handOver: s.handOver }) }
  })
const roles = async (tabs: readonly Tab[]): Promise<string[]> => (await Promise.all(tabs.map(status))).map((s: Status) => `${s.role}/${s.voters}`)

async function bankExact (tabs: readonly Tab[]): Promise<void> {
  for (const t of tabs) {
    const values = await t.page.evaluate(async () => window.dbHarness.read('strict'))
    expect(Object.values(values).reduce((a, b) => a + b, 0)).toBe(800)
  }
  await expect.poll(async () => new Set((await Promise.all(tabs.map(status))).map(s => s.digest)).size, { timeout: 30_000, intervals: [300] }).toBe(1)
}

test('three voter tabs and a signalling relay that is no member: transfers exact in every tab; a hidden voter hands over and comes back; a closed one is voted out', async ({ browser }) => {
  test.setTimeout(240_000)
  const relay = signal.relay.ws
  const a = await openTab(browser, { peers: [relay], found: 'tab-voters' })
  expect(await status(a)).toMatchObject({ role: 'voter', voters: 1 })
  const invite = await a.page.evaluate(async () => window.dbHarness.invite('voter'))
  // The others reach the founder through the relay's circuit (WebRTC, then direct) to fetch the genesis and be admitted.
  const viaRelay = { peers: [relay, `${relay}/p2p-circuit/webrtc/p2p/${a.id}`], invite, creator: a.id }
  const b = await openTab(browser, viaRelay)
  const c = await openTab(browser, viaRelay)
  const tabs = [a, b, c]
  // Both are voted in once they keep up: three voters, all tabs.
  await expect.poll(async () => roles(tabs), { timeout: 60_000, intervals: [500] }).toEqual(['voter/3', 'voter/3', 'voter/3'])

  // Concurrent transfers from every tab.
  const results = await Promise.all(tabs.map(async t => t.page.evaluate(async () => window.dbHarness.transfers(15, 3))))
  for (const r of results) expect(r.failed).toEqual([])
  expect(results.reduce((n, r) => n + r.committed, 0)).toBeGreaterThan(0)
  await bankExact(tabs)

  // The relay is a member of nothing: it hosts no group and keeps no store; the tabs reach it, and each other directly.
  const health = await signal.relay.health() as unknown as { groups: number, peers: number }
  expect(health.groups).toBe(0)
  expect(health.peers).toBeGreaterThanOrEqual(3)
  for (const t of tabs) expect(await t.page.evaluate(() => window.dbHarness.status().votersConnected)).toBe(2)
  expect((await readdir(signal.relay.dataDir)).filter(f => f !== 'identity.key' && f !== 'relay.json' && !f.endsWith('.tmp'))).toEqual([])

  // B hidden: past the grace period it hands over (an epoch without it) and stays an observer; commits go on.
  const before = (await status(a)).epoch
  await b.page.evaluate(() => { window.dbHarness.setVisibility('hidden') })
  await expect.poll(async () => roles(tabs), { timeout: 30_000, intervals: [300] }).toEqual(['voter/2', 'observer/2', 'voter/2'])
  expect((await status(b)).handOver).toMatchObject({ visible: false, handovers: 1, handedOver: 1 })
  expect((await status(a)).epoch).toBeGreaterThan(before)
  const whileHidden = await a.page.evaluate(async () => window.dbHarness.transfers(6, 2))
  expect(whileHidden.failed).toEqual([])
  // Shown again, it asks back and is voted in.
  await b.page.evaluate(() => { window.dbHarness.setVisibility('visible') })
  await expect.poll(async () => roles(tabs), { timeout: 60_000, intervals: [500] }).toEqual(['voter/3', 'voter/3', 'voter/3'])
  expect((await status(b)).handOver).toMatchObject({ visible: true, asks: 1 })
  const afterShown = await b.page.evaluate(async () => window.dbHarness.transfers(6, 2))
  expect(afterShown.failed).toEqual([])

  // C's tab closed (no goodbye): the others' failure detector votes it out, and commits go on.
  await c.context.close()
  const left = [a, b]
  await expect.poll(async () => roles(left), { timeout: 60_000, intervals: [500] }).toEqual(['voter/2', 'voter/2'])
  const afterClose = await Promise.all(left.map(async t => t.page.evaluate(async () => window.dbHarness.transfers(8, 2))))
  for (const r of afterClose) expect(r.failed).toEqual([])
  await bankExact(left)
  for (const t of left) expect(await t.page.evaluate(() => window.dbHarness.errors())).toEqual([])
  for (const t of left) await t.context.close()
})
