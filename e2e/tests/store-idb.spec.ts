import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, expect, test, type Page } from '@playwright/test'
import { storeComplianceCases } from '@tideline/core/store-compliance-cases'
import { chromiumLaunchOptions } from '../support/chromium.js'
import { harnessPage } from '../support/harness-url.js'

const harnessUrl = (): string => harnessPage('store')

async function openHarness (page: Page): Promise<void> {
  await page.goto(harnessUrl())
  await page.waitForFunction(() => window.storeHarness !== undefined)
}

for (const where of ['page', 'worker'] as const) {
  test.describe(`IdbStore compliance in Chromium (${where})`, () => {
    for (const c of storeComplianceCases) {
      test(c.name, async ({ page }) => {
        await openHarness(page)
        const result = await page.evaluate(async ([name, w]) => window.storeHarness.run(name, w), [c.name, where] as const)
        expect(result.error).toBeUndefined()
        expect(result).toEqual({ ok: true, scope: where === 'page' ? 'Window' : 'DedicatedWorkerGlobalScope' })
      })
    }
  })
}

const expected = (unsettled: string[]) => ({
  k: { n: 2, b: [8] },
  // Only each key's newest version is on disk: below it, a reopened store refuses rather than guess.
  kBefore2: 'SnapshotTooOldError',
  outcome1: { status: 'committed', value: 1 },
  entries: 2,
  unsettled,
  cursor: 2,
  record: expect.stringMatching(/ok$/) as unknown
})

test.describe('IdbStore persistence in Chromium', () => {
  test('data survives a page reload', async ({ page }) => {
    await openHarness(page)
    const name = `reload-${test.info().testId}`
    await page.evaluate(async n => window.storeHarness.seed(n), name)
    const unsettled = await page.evaluate(() => window.storeHarness.expectedUnsettled)
    await page.reload()
    await page.waitForFunction(() => window.storeHarness !== undefined)
    expect(await page.evaluate(async n => window.storeHarness.inspect(n), name)).toEqual(expected(unsettled))
    // and a name never written is empty: the check above is not vacuous
    expect(await page.evaluate(async () => window.storeHarness.inspect('never-written'))).toMatchObject({ k: undefined, kBefore2: 'answered undefined', outcome1: undefined, entries: 0, unsettled: [] })
  })

  test('data survives closing the browser and opening its profile again', async () => {
    const profile = await mkdtemp(join(tmpdir(), 'tideline-profile-'))
    try {
      const first = await chromium.launchPersistentContext(profile, chromiumLaunchOptions())
      const p1 = first.pages()[0] ?? await first.newPage()
      await openHarness(p1)
      await p1.evaluate(async () => window.storeHarness.seed('persisted'))
      const unsettled = await p1.evaluate(() => window.storeHarness.expectedUnsettled)
      await first.close()

      const second = await chromium.launchPersistentContext(profile, chromiumLaunchOptions())
      try {
        const p2 = second.pages()[0] ?? await second.newPage()
        await openHarness(p2)
        expect(await p2.evaluate(async () => window.storeHarness.inspect('persisted'))).toEqual(expected(unsettled))
      } finally {
        await second.close()
      }
    } finally {
      await rm(profile, { recursive: true, force: true })
    }
  })
})
