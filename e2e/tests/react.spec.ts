import { fileURLToPath } from 'node:url'
import { expect, test, type Browser, type Page } from '@playwright/test'
import { encodeSigned } from '@tideline/net-libp2p'
import { startLocalGroup, type ProcessGroup } from '@tideline/test-kit'
import { harnessPage } from '../support/harness-url.js'

// @tideline/react in real Chromium with React 19: three relay processes, three
// tabs in separate contexts, each rendering useQuery over the `todo/` prefix
// from its own replica (IndexedDB in a worker) and calling through useCall.

const PROCEDURES = fileURLToPath(new URL('../pages/react/procedures.ts', import.meta.url))

let group: ProcessGroup

test.beforeAll(async () => {
  group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'react' })
})

test.afterAll(async () => {
  await group?.stop()
})

/** `n` tabs in separate contexts, each with the React page open on the group and its query live. */
async function openTabs (browser: Browser, n: number): Promise<Page[]> {
  const opts = { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId }
  const tabs: Page[] = []
  for (let i = 0; i < n; i++) {
    const page = await (await browser.newContext()).newPage()
    await page.goto(harnessPage('react'))
    await page.waitForFunction(() => window.reactHarness !== undefined)
    await page.evaluate(async o => await window.reactHarness.open(o), opts)
    await page.locator('#status[data-status="live"]').waitFor({ timeout: 30_000 })
    tabs.push(page)
  }
  return tabs
}

type Action = 'add' | 'move' | 'remove'
interface Act { readonly status: string, readonly reason?: string, readonly ts: string }
/** Every committed call, to rebuild the list as of any timestamp. */
const committed: Array<{ readonly ts: string, readonly action: Action, readonly args: Record<string, string> }> = []
async function act (p: Page, action: Action, args: Record<string, string>): Promise<Act> {
  const r = await p.evaluate(async ([a, x]) => await window.reactHarness.act(a, x), [action, args] as const)
  if (r.status === 'committed') committed.push({ ts: r.ts, action, args })
  return r
}

/** The rows the list holds just below `ts`: the committed calls before it, in timestamp order (the group's one order). */
function rowsBelow (ts: string): string[] {
  const items = new Map<string, string>()
  for (const c of [...committed].sort((a, b) => (a.ts < b.ts ? -1 : 1))) {
    if (c.ts >= ts) break
    if (c.action === 'add') items.set(`todo/${c.args.id ?? ''}`, c.args.text ?? '')
    else if (c.action === 'remove') items.delete(`todo/${c.args.id ?? ''}`)
    else {
      items.set(`todo/${c.args.to ?? ''}`, items.get(`todo/${c.args.from ?? ''}`) ?? '')
      items.delete(`todo/${c.args.from ?? ''}`)
    }
  }
  return [...items].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`)
}

test('useQuery over a prefix shows every tab\'s inserts, moves and deletes, every render the list as of its timestamp in the group\'s one order', async ({ browser }) => {
  const tabs = await openTabs(browser, 3)

  // Every tab inserts its own items, then all tabs move and delete concurrently, some on the same items.
  await Promise.all(tabs.map(async (p, i) => { for (let j = 0; j < 4; j++) expect((await act(p, 'add', { id: `${i}-${j}`, text: `item ${i}.${j}`, by: `tab ${i}` })).status).toBe('committed') }))
  const contested = await Promise.all(tabs.map(async (p, i) => await Promise.all([
    act(p, 'move', { from: '0-0', to: `moved-by-${i}` }),
    act(p, 'remove', { id: `${(i + 1) % 3}-1` }),
    act(p, 'move', { from: `${i}-2`, to: `${i}-9` }),
    act(p, 'add', { id: `${i}-3`, text: 'again', by: `tab ${i}` })
  ])))
  // Exactly one tab moved 0-0 and exactly one removed each x-1; the others were told why not.
  expect(contested.map(c => c[0]?.status).filter(s => s === 'committed')).toHaveLength(1)
  expect(contested.flatMap(c => [c[0], c[1]]).filter(r => r?.status === 'aborted').map(r => r?.reason)).toEqual(expect.arrayContaining(['gone']))
  expect(contested.map(c => c[3])).toMatchObject([0, 1, 2].map(() => ({ status: 'aborted', reason: 'taken' })))

  // Every tab comes to show what a strict read sees, and a procedure counting the range agrees.
  const final = await tabs[0]?.evaluate(async () => await window.reactHarness.strict())
  expect(final?.rows).toHaveLength(3 * 4 - 3)
  expect(final?.counted).toBe(final?.rows.length)
  for (const p of tabs) {
    await expect.poll(async () => await p.locator('#todos li').evaluateAll(els => els.map(e => `${e.getAttribute('data-key') ?? ''}=${e.textContent ?? ''}`)), { timeout: 30_000 }).toEqual(final?.rows)
  }

  // The same order everywhere: every render of every tab shows exactly the list as of its timestamp in the
  // group's one order of committed calls (so no tab ever showed a state another order would give), apart
  // from the keys it flags as speculative (its own optimistic calls in flight, shown over that state).
  const renders = await Promise.all(tabs.map(async p => await p.evaluate(() => window.reactHarness.renders())))
  const keyOf = (row: string): string => row.slice(0, row.indexOf('='))
  for (const list of renders) {
    const withTs = list.filter(r => r.ts !== undefined)
    expect(withTs.filter(r => r.speculative.length === 0).length).toBeGreaterThan(3)
    for (const r of withTs) {
      const final = (rows: string[]): string[] => rows.filter(row => !r.speculative.includes(keyOf(row)))
      expect(final(r.rows), `rows at ${r.ts ?? ''}`).toEqual(final(rowsBelow(r.ts ?? '')))
    }
  }
  // A tab's own calls showed as pending while in flight, and nothing is pending now; the status went loading → syncing/live → live.
  for (const list of renders) {
    expect(list.some(r => r.pending)).toBe(true)
    expect(list[list.length - 1]).toMatchObject({ status: 'live', pending: false })
    expect(list[0]?.status).toBe('loading')
  }
})

test('an optimistic call shows on screen before its final result; a conflicting call from another tab removes the loser\'s pending row and shows why', async ({ browser }) => {
  const tabs = await openTabs(browser, 2)
  const [a, b] = tabs as [Page, Page]
  // Both tabs add the same id at the same moment, each with its own text: each shows its own at once.
  const at = Date.now() + 500
  const [ra, rb] = await Promise.all([a.evaluate(async t => await window.reactHarness.race('contested', 'from a', t), at), b.evaluate(async t => await window.reactHarness.race('contested', 'from b', t), at)])
  for (const r of [ra, rb]) {
    expect(r.shownMs, JSON.stringify(r)).toBeDefined()
    expect(r.shownMs as number).toBeLessThan(r.finalMs)
  }
  console.info(`optimistic: shown after ${ra.shownMs?.toFixed(1) ?? '-'} / ${rb.shownMs?.toFixed(1) ?? '-'} ms, final after ${ra.finalMs.toFixed(1)} / ${rb.finalMs.toFixed(1)} ms`)
  expect([ra.status, rb.status].sort()).toEqual(['aborted', 'committed'])
  const [winner, loser] = ra.status === 'committed' ? [a, b] : [b, a]
  const won = ra.status === 'committed' ? 'from a' : 'from b'
  const lost = ra.status === 'committed' ? 'from b' : 'from a'
  // The loser's pending row gives way to the winner's, and the loser's screen says why its call did not take.
  for (const p of [winner, loser]) await expect(p.locator('#todos li[data-key="todo/contested"]')).toHaveText(won, { timeout: 15_000 })
  await expect(loser.locator('#add-state')).toHaveText('not added: taken')
  await expect(loser.locator('#todos li[data-key="todo/contested"]')).toHaveAttribute('data-speculative', 'false')
  // The loser rendered its own text as speculative first, and never showed it as final.
  const renders = await loser.evaluate(() => window.reactHarness.renders())
  const own = renders.filter(r => r.rows.includes(`todo/contested=${lost}`))
  expect(own.length).toBeGreaterThan(0)
  expect(own.every(r => r.speculative.includes('todo/contested'))).toBe(true)
})
