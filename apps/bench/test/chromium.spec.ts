import { afterEach, describe, expect, it } from 'vitest'
import { requireChromium } from '@tideline/e2e/support/chromium'

describe('the benchmarks\' Chromium', () => {
  const saved = process.env.TIDELINE_CHROMIUM
  afterEach(() => {
    if (saved === undefined) delete process.env.TIDELINE_CHROMIUM
    else process.env.TIDELINE_CHROMIUM = saved
  })

  it('names a missing TIDELINE_CHROMIUM and says how to get a Chromium, instead of a download hint', () => {
    process.env.TIDELINE_CHROMIUM = '/nonexistent/chrome'
    expect(() => requireChromium(() => '/nonexistent/playwright-chrome')).toThrow(expect.objectContaining({
      name: 'ChromiumNotFoundError',
      message: expect.stringMatching(/TIDELINE_CHROMIUM=\/nonexistent\/chrome does not exist.*apt-get install chromium/)
    }))
  })

  it('launches the one TIDELINE_CHROMIUM names when it exists', () => {
    process.env.TIDELINE_CHROMIUM = process.execPath
    expect(requireChromium(() => '/nonexistent').executablePath).toBe(process.execPath)
  })
})
