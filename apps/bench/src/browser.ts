import { fileURLToPath } from 'node:url'
import { chromium } from '@playwright/test'
import { requireChromium } from '@tideline/e2e/support/chromium'
import { startHarness } from '@tideline/e2e/support/harness-server'
import { encodeSigned } from '@tideline/net-libp2p'
import { startLocalGroup } from '@tideline/test-kit'
import { quantile } from './closed-loop.js'

/** The bank procedures the browser test page uses (shared with the relays). */
const PROCEDURES = fileURLToPath(new URL('../../../e2e/pages/db/procedures.ts', import.meta.url))

export interface BrowserBenchOptions {
  /** Calls in flight at once from the tab. */
  readonly clients: number
  readonly seconds: number
  /** Thunks for the worker-evaluation measurement. */
  readonly evalThunks: number
  readonly runSize: number
}

export interface BrowserBenchResult {
  readonly calls: number
  readonly failed: number
  readonly txnPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly evalTxnPerSec: number
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
// Only inside page.evaluate callbacks (they run in the page, so they may not use names from this module).
declare const window: { dbHarness: DbHarness | undefined }

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
    return {
      calls: run.ms.length,
      failed: run.failed,
      txnPerSec: run.ms.length / (run.elapsedMs / 1000),
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      evalTxnPerSec: ev.txnPerSec,
      chromium: browser.version()
    }
  } finally {
    await browser.close()
    await harness.close()
    await group.stop()
  }
}
