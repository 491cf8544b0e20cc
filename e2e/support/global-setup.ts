import { startHarness } from './harness-server.js'

/** Serves the test pages for the whole run; workers read the URL from the environment. */
export default async function globalSetup (): Promise<() => Promise<void>> {
  const harness = await startHarness()
  process.env.TIDELINE_HARNESS_URL = harness.url
  return async () => harness.close()
}
