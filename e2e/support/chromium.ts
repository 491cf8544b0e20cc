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

/** No Chromium to launch: says how to get one (Playwright's own error would suggest a download). */
export class ChromiumNotFoundError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ChromiumNotFoundError'
  }
}

/**
 * Launch options for a Chromium that is there, for the benchmarks: like
 * `chromiumLaunchOptions`, but when neither `TIDELINE_CHROMIUM`, Debian's
 * chromium nor Playwright's own (`playwrightPath()`) exists it throws
 * ChromiumNotFoundError saying how to get one.
 */
export function requireChromium (playwrightPath: () => string): LaunchOptions {
  const options = chromiumLaunchOptions()
  const fromEnv = process.env.TIDELINE_CHROMIUM
  const path = options.executablePath ?? safePath(playwrightPath)
  if (path !== undefined && existsSync(path)) return options
  throw new ChromiumNotFoundError([
    fromEnv !== undefined && fromEnv !== '' ? `TIDELINE_CHROMIUM=${fromEnv} does not exist.` : `No Chromium found (neither ${DEBIAN_CHROMIUM} nor Playwright's own).`,
    'Get one of: Debian\'s package (apt-get install chromium), any Chromium or Chrome named by TIDELINE_CHROMIUM=/path/to/chrome,',
    'or Playwright\'s own on a machine that may download it (npx playwright install chromium).'
  ].join(' '))
}

function safePath (get: () => string): string | undefined {
  try {
    return get()
  } catch {
    return undefined
  }
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run'
]
