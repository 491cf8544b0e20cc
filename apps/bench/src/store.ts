import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from '@playwright/test'
import { benchStore, type StoreBenchOptions, type StoreBenchResult } from '@tideline/core/store-bench'
import { requireChromium } from '@tideline/e2e/support/chromium'
import { startHarness } from '@tideline/e2e/support/harness-server'
import { LevelStore } from '@tideline/store-node'

/** What e2e/pages/bench-store puts on the page. */
interface BenchPage {
  readonly storeBench: { run(name: string, opts: StoreBenchOptions): Promise<StoreBenchResult> }
}

export interface StoreBenchReport {
  readonly idb: StoreBenchResult
  /** One strict IndexedDB transaction per thunk: the same store and guarantees, no batching. */
  readonly naiveIdb: StoreBenchResult
  readonly node: StoreBenchResult
  readonly chromium: string
}

export interface StoreBenchInit {
  readonly batches: number
  readonly perBatch: number
  readonly naiveWrites: number
  readonly reads: number
}

/** The store benchmark: IdbStore in real Chromium (page), the naive baseline beside it, LevelStore in Node. */
export async function benchStores (init: StoreBenchInit): Promise<StoreBenchReport> {
  const batched: StoreBenchOptions = { batches: init.batches, perBatch: init.perBatch, reads: init.reads, settle: true }
  const naive: StoreBenchOptions = { batches: init.naiveWrites, perBatch: 1, reads: 0, settle: false }

  const harness = await startHarness()
  const browser = await chromium.launch(requireChromium(() => chromium.executablePath()))
  let idb: StoreBenchResult
  let naiveIdb: StoreBenchResult
  try {
    const page = await browser.newPage()
    await page.goto(`${harness.url}/bench-store/`)
    await page.waitForFunction(() => (globalThis as unknown as BenchPage).storeBench !== undefined)
    idb = await page.evaluate(async opts => (globalThis as unknown as BenchPage).storeBench.run('bench-batched', opts), batched)
    naiveIdb = await page.evaluate(async opts => (globalThis as unknown as BenchPage).storeBench.run('bench-naive', opts), naive)
  } finally {
    await browser.close()
    await harness.close()
  }

  const dir = await mkdtemp(join(tmpdir(), 'tideline-bench-level-'))
  let node: StoreBenchResult
  try {
    const store = await LevelStore.open({ path: dir })
    try {
      node = await benchStore(store, batched)
    } finally {
      await store.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return { idb, naiveIdb, node, chromium: browser.version() }
}
