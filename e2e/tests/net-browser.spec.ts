import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test'
import type { Message } from '@tideline/core'
import { simRegistry } from '@tideline/sim'
import { startRelayGroup, testKey, type TestKey, type TestRelay } from '../support/relays.js'
import { harnessPage } from '../support/harness-url.js'

// Three voters in this process, each a WebSockets relay; pages in Chromium
// reach them over WebSockets and each other over WebRTC through their circuits.

const GROUP = 'net-browser'
const transferHash = simRegistry.procedures.get('transfer')?.hash ?? ''

const harnessUrl = (): string => harnessPage('net')

interface OpenPage {
  readonly page: Page
  readonly context: BrowserContext
  readonly id: string
}

/** A page in its own browser context (its own profile, like another tab elsewhere), started as `key`. */
async function openNetPage (browser: Browser, key: TestKey, relays: readonly TestRelay[], peers: readonly string[]): Promise<OpenPage> {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(harnessUrl())
  await page.waitForFunction(() => window.netHarness !== undefined)
  const { id } = await page.evaluate(async o => window.netHarness.start(o), {
    key: Array.from(privateKeyToProtobuf(key.key)),
    groupId: GROUP,
    relays: relays.map(r => r.wsAddress),
    peers: [...peers]
  })
  expect(id).toBe(key.id)
  return { page, context, id }
}

async function closeNetPage (p: OpenPage | undefined): Promise<void> {
  if (p === undefined) return
  await p.page.evaluate(async () => window.netHarness.stop()).catch(() => {})
  await p.context.close()
}

test.describe('browser libp2p in Chromium with in-process relays', () => {
  const relays: TestRelay[] = []
  const keys: { a?: TestKey, b?: TestKey, c?: TestKey } = {}

  test.beforeAll(async () => {
    keys.a = await testKey()
    keys.b = await testKey()
    keys.c = await testKey()
    relays.push(...await startRelayGroup({ groupId: GROUP, count: 3, admit: new Set([keys.a.id, keys.b.id, keys.c.id]) }))
  })

  test.afterAll(async () => {
    for (const r of relays) await r.stop()
  })

  test('a page reaches every relay over WebSockets and commits a transfer through one of them', async ({ browser }) => {
    const key = keys.a as TestKey
    const [r0, r1, r2] = relays as [TestRelay, TestRelay, TestRelay]
    const opened: { a?: OpenPage } = {}
    try {
      opened.a = await openNetPage(browser, key, relays, [])
      const { page, id } = opened.a

      // A WebSockets connection to every relay, seen from both ends, and a reservation on each.
      await expect.poll(async () => {
        const conns = await page.evaluate(() => window.netHarness.connections())
        return relays.map(r => conns.some(c => c.peer === r.id && c.remoteAddr.includes('/ws/') && c.direct && !c.limited))
      }, { timeout: 10_000 }).toEqual([true, true, true])
      for (const r of relays) expect(r.node.getConnections().some(c => c.remotePeer.toString() === id && c.remoteAddr.toString().includes('/ws'))).toBe(true)
      await expect.poll(async () => {
        const addrs = await page.evaluate(() => window.netHarness.addresses())
        return relays.map(r => addrs.some(a => a.includes(`/p2p/${r.id}/p2p-circuit/webrtc`)))
      }, { timeout: 10_000 }).toEqual([true, true, true])

      // A transfer submitted over the message transport to one voter commits...
      const submit = { t: 'submit', req: { clientTxnId: `page-${id.slice(-6)}-1`, procedure: 'transfer', hash: transferHash, args: { from: 'pa', to: 'pb', amount: 7 } }, replyTo: id } satisfies Message
      const rep = await page.evaluate(async ([to, m]) => window.netHarness.request(to, m), [r0.id, submit] as const)
      expect(rep).toMatchObject({ t: 'submit-rep', result: { status: 'committed', value: { from: 93, to: 107 } } })

      // ...its effect is on another voter's replica (read in Node)...
      expect((await r1.peer.read(['acct/pa', 'acct/pb'])).values).toEqual({ 'acct/pa': 93, 'acct/pb': 107 })

      // ...and a strict read from the page through the third voter sees it.
      const read = { t: 'read', reqId: 'page-read-1', keys: ['acct/pa', 'acct/pb'], consistency: 'strict', replyTo: id } satisfies Message
      const readRep = await page.evaluate(async ([to, m]) => window.netHarness.request(to, m), [r2.id, read] as const)
      expect(readRep).toMatchObject({ t: 'read-rep', result: { values: { 'acct/pa': 93, 'acct/pb': 107 } } })

      // A submission with the wrong procedure hash is refused with the named error, and changes nothing.
      const bad = { t: 'submit', req: { clientTxnId: `page-${id.slice(-6)}-2`, procedure: 'transfer', hash: 'not-the-hash', args: { from: 'pa', to: 'pb', amount: 1 } }, replyTo: id } satisfies Message
      const badRep = await page.evaluate(async ([to, m]) => window.netHarness.request(to, m), [r1.id, bad] as const)
      expect(badRep).toMatchObject({ t: 'submit-rep', error: { name: 'ProcedureHashMismatchError' } })
      expect((await r0.peer.read(['acct/pa'])).values).toEqual({ 'acct/pa': 93 })
    } finally {
      await closeNetPage(opened.a)
    }
  })

  test('two pages reach each other over WebRTC through a relay circuit, directly, and exchange messages', async ({ browser }) => {
    const [kb, kc] = [keys.b as TestKey, keys.c as TestKey]
    const via = relays[1] as TestRelay
    const opened: { b?: OpenPage, c?: OpenPage } = {}
    try {
      opened.b = await openNetPage(browser, kb, relays, [kc.id])
      opened.c = await openNetPage(browser, kc, relays, [kb.id])
      const [b, c] = [opened.b, opened.c]

      // B's address through one relay's circuit, once its reservation there is made.
      const circuit = `/p2p/${via.id}/p2p-circuit/webrtc`
      await expect.poll(async () => (await b.page.evaluate(() => window.netHarness.addresses())).some(a => a.includes(circuit)), { timeout: 10_000 }).toBe(true)
      const target = (await b.page.evaluate(() => window.netHarness.addresses())).find(a => a.includes(circuit)) as string

      // C dials it: signalling through the relay, then a direct WebRTC connection (attempts bounded and retried).
      const dialed = await c.page.evaluate(async t => window.netHarness.dial(t, 4, 5_000), target)
      test.info().annotations.push({ type: 'webrtc-dial', description: JSON.stringify({ attempts: dialed.attempts, attemptMs: dialed.attemptMs, errors: dialed.errors }) })
      expect(dialed.connection).toMatchObject({ peer: b.id, direct: true, limited: false })
      expect(dialed.connection.remoteAddr).toContain('/webrtc')

      // A stream C→B runs on that connection: B's handler sees a direct, unlimited WebRTC connection from C.
      const echoed = await c.page.evaluate(async p => window.netHarness.echo(p, 'hello over webrtc'), b.id)
      expect(echoed).toMatchObject({ text: 'hello over webrtc', connection: { peer: b.id, direct: true, limited: false } })
      const seen = await b.page.evaluate(() => window.netHarness.echoes())
      expect(seen).toHaveLength(1)
      expect(seen[0]).toMatchObject({ from: c.id, text: 'hello over webrtc', connection: { peer: c.id, direct: true, limited: false } })
      expect(seen[0]?.connection.remoteAddr).toContain('/webrtc')

      // Tideline messages both ways over /tideline/<group>/msg/13.0.0 between the pages.
      const toB = { t: 'read', reqId: 'c-to-b', keys: ['acct/pa'], consistency: 'snapshot', replyTo: c.id } satisfies Message
      const toC = { t: 'read', reqId: 'b-to-c', keys: ['acct/pb'], consistency: 'snapshot', replyTo: b.id } satisfies Message
      await c.page.evaluate(([to, m]) => { window.netHarness.send(to, m) }, [b.id, toB] as const)
      await b.page.evaluate(([to, m]) => { window.netHarness.send(to, m) }, [c.id, toC] as const)
      await expect.poll(async () => b.page.evaluate(() => window.netHarness.inbox()), { timeout: 10_000 }).toContainEqual({ from: c.id, message: toB })
      await expect.poll(async () => c.page.evaluate(() => window.netHarness.inbox()), { timeout: 10_000 }).toContainEqual({ from: b.id, message: toC })
      // Every unlimited connection between them is the direct WebRTC one: the messages did not ride the relay.
      const cToB = (await c.page.evaluate(() => window.netHarness.connections())).filter(x => x.peer === b.id && !x.limited)
      expect(cToB.length).toBeGreaterThan(0)
      for (const x of cToB) expect(x).toMatchObject({ direct: true, remoteAddr: expect.stringContaining('/webrtc') })
    } finally {
      await closeNetPage(opened.c)
      await closeNetPage(opened.b)
    }
  })
})
