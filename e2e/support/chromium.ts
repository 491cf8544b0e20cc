import { existsSync } from 'node:fs'
import type { LaunchOptions } from '@playwright/test'

/**
 * How every browser test and benchmark launches Chromium. Never downloads a
 * browser: `TIDELINE_CHROMIUM` names a Chromium binary; otherwise Debian's
 * `/usr/bin/chromium` when present; otherwise Playwright's own (a normal
 * machine after `npx playwright install chromium`).
 */
export function chromiumLaunchOptions (): LaunchOptions {
  const fromEnv = process.env.TIDELINE_CHROMIUM
  const executablePath = fromEnv !== undefined && fromEnv !== '' ? fromEnv : existsSync(DEBIAN_CHROMIUM) ? DEBIAN_CHROMIUM : undefined
  return {
    ...(executablePath === undefined ? {} : { executablePath }),
    args: CHROMIUM_ARGS
  }
}

const DEBIAN_CHROMIUM = '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run'
]
