import { fileURLToPath } from 'node:url'
import { chromium } from '@playwright/test'
import { requireChromium } from '@tideline/e2e/support/chromium'
import { startHarness } from '@tideline/e2e/support/harness-server'
import { encodeSigned } from '@tideline/net-libp2p'
import { startLocalGroup } from '@tideline/test-kit'
import { PARTITIONS } from '@tideline/demo/procedures'
import { serveDemo } from '@tideline/demo/server'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { quantile } from './closed-loop.js'

/** The bank procedures the browser test page uses (shared with the relays). */
const PROCEDURES = fileURLToPath(new URL('../../../e2e/pages/db/procedures.ts', import.meta.url))
/** The demo's procedures, for the click-to-screen time in the demo. */
const DEMO_PROCEDURES = fileURLToPath(new URL('../../../demo/src/procedures.ts', import.meta.url))
/** The todo procedures of the React page (e2e/pages/react), for the optimistic paint. */
const REACT_PROCEDURES = fileURLToPath(new URL('../../../e2e/pages/react/procedures.ts', import.meta.url))

export interface BrowserBenchOptions {
  /** Calls in flight at once from the tab. */
  readonly clients: number
  readonly seconds: number
  /** Thunks for the worker-evaluation measurement. */
  readonly evalThunks: number
  readonly runSize: number
  /** Sequential optimistic calls from the React page. */
  readonly optimisticCalls: number
}

export interface Paint { readonly calls: number, readonly shownP50: number, readonly paintP50: number, readonly paintP99: number, readonly finalP50: number, readonly finalP99: number }

export interface BrowserBenchResult {
  readonly calls: number
  readonly failed: number
  readonly txnPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly evalTxnPerSec: number
  /** Optimistic calls from a React page (useCall, useQuery): click to the item in the DOM, to the next frame, and to the final result. */
  readonly optimistic: Paint
  /** The demo app: a click on "Add card" to the card on the board, to the next frame, and to the final result. */
  readonly demo: Paint
  readonly chromium: string
}

/** What the page (e2e/pages/db) offers the benchmark; the functions run in the page. */
interface DbHarness {
  open(o: { peers: string[], invite: string, creator: string }): Promise<unknown>
  online(): Promise<void>
  latency(seconds: number, parallel: number): Promise<{ ms: number[], elapsedMs: number, failed: number }>
  evalBench(total: number, runSize: number): Promise<{ txnPerSec: number, ms: number }>
  close(): Promise<void>
}
/** What the React page (e2e/pages/react) offers. */
interface ReactHarness {
  open(o: { peers: string[], invite: string, creator: string }): Promise<unknown>
  optimisticLatency(n: number, prefix: string): Promise<{ shown: number[], painted: number[], final: number[] }>
}
// Only inside page.evaluate callbacks (they run in the page, so they may not use names from this module).
declare const window: { dbHarness: DbHarness | undefined, reactHarness: ReactHarness | undefined }

/**
 * Calls from one Chromium tab (`@tideline/db`, IndexedDB replica and
 * evaluation in its worker) through three relay processes on loopback, and
 * the worker's evaluation throughput on its own.
 */
export async function benchBrowser (o: BrowserBenchOptions): Promise<BrowserBenchResult> {
  const group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'bench-browser' })
  const harness = await startHarness()
  const browser = await chromium.launch(requireChromium(() => chromium.executablePath()))
  try {
    const page = await (await browser.newContext()).newPage()
    await page.goto(`${harness.url}/db/`)
    await page.waitForFunction(() => window.dbHarness !== undefined)
    await page.evaluate(async opts => (window.dbHarness as DbHarness).open(opts), { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId })
    await page.evaluate(async () => (window.dbHarness as DbHarness).online())
    // Warm-up: connections, joins, JIT.
    await page.evaluate(async c => (window.dbHarness as DbHarness).latency(1, c), o.clients)
    const run = await page.evaluate(async ([s, c]) => (window.dbHarness as DbHarness).latency(s, c), [o.seconds, o.clients] as const)
    const sorted = [...run.ms].sort((a, b) => a - b)
    await page.evaluate(async () => (window.dbHarness as DbHarness).close())
    const ev = await page.evaluate(async ([n, r]) => (window.dbHarness as DbHarness).evalBench(n, r), [o.evalThunks, o.runSize] as const)
    const optimistic = await optimisticPaint(browser, harness.url, o.optimisticCalls)
    const demo = await demoPaint(browser, o.optimisticCalls)
    return {
      calls: run.ms.length,
      failed: run.failed,
      txnPerSec: run.ms.length / (run.elapsedMs / 1000),
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      evalTxnPerSec: ev.txnPerSec,
      optimistic,
      demo,
      chromium: browser.version()
    }
  } finally {
    await browser.close()
    await harness.close()
    await group.stop()
  }
}

/** A group of its own for the React page's procedures; one tab, `n` optimistic adds after a warm-up. */
async function optimisticPaint (browser: Awaited<ReturnType<typeof chromium.launch>>, url: string, n: number): Promise<Paint> {
  const group = await startLocalGroup({ relays: 3, procedures: REACT_PROCEDURES, groupId: 'bench-react' })
  try {
    const page = await (await browser.newContext()).newPage()
    await page.goto(`${url}/react/`)
    await page.waitForFunction(() => window.reactHarness !== undefined)
    await page.evaluate(async opts => (window.reactHarness as ReactHarness).open(opts), { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId })
    await page.evaluate(async () => (window.reactHarness as ReactHarness).optimisticLatency(20, 'warm'))
    const r = await page.evaluate(async c => (window.reactHarness as ReactHarness).optimisticLatency(c, 'run'), n)
    return paintOf(r)
  } finally {
    await group.stop()
  }
}

function paintOf (r: { shown: number[], painted: number[], final: number[] }): Paint {
  const q = (xs: number[], p: number): number => quantile([...xs].sort((a, b) => a - b), p)
  return { calls: r.final.length, shownP50: q(r.shown, 0.5), paintP50: q(r.painted, 0.5), paintP99: q(r.painted, 0.99), finalP50: q(r.final, 0.5), finalP99: q(r.final, 0.99) }
}

/** The demo's click-to-screen time alone (`pnpm bench browser --only demo`), for comparing changes to the demo. */
export async function benchDemoPaint (n: number): Promise<Paint & { chromium: string }> {
  const browser = await chromium.launch(requireChromium(() => chromium.executablePath()))
  try {
    return { ...await demoPaint(browser, n), chromium: browser.version() }
  } finally {
    await browser.close()
  }
}

/**
 * The demo app as `pnpm demo` serves it (its own group, signed calls): `n`
 * cards added through the form one after another, each timed from the click
 * on "Add card" until the card is on the board (a MutationObserver), the
 * next animation frame, and the "Card added." message (the final result).
 */
async function demoPaint (browser: Awaited<ReturnType<typeof chromium.launch>>, n: number): Promise<Paint> {
  const group = await startLocalGroup({ relays: 3, procedures: DEMO_PROCEDURES, groupId: 'bench-demo', signedCalls: true, partitions: PARTITIONS })
  const outDir = await mkdtemp(join(tmpdir(), 'tideline-bench-demo-'))
  const app = await serveDemo({ group: { peers: group.relays.map(r => r.ws), invite: encodeSigned(group.invite), creator: group.creatorId, genesis: encodeSigned(group.genesis) }, outDir })
  try {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage()
    await page.goto(app.url)
    await page.waitForFunction(() => (window as unknown as { demo?: { ready: boolean } }).demo?.ready === true, undefined, { timeout: 60_000 })
    await page.locator('#conn').filter({ hasText: /^online/ }).waitFor({ timeout: 60_000 })
    const once = async (count: number, prefix: string): Promise<{ shown: number[], painted: number[], final: number[] }> =>
      await page.evaluate(async ([c, p]) => await (window as unknown as { demo: { clickLatency: (c: number, p: string) => Promise<{ shown: number[], painted: number[], final: number[] }> } }).demo.clickLatency(c, p), [count, prefix] as const)
    await once(10, 'warm-up')
    return paintOf(await once(n, 'card'))
  } finally {
    await app.close()
    await group.stop()
    await rm(outDir, { recursive: true, force: true })
  }
}
