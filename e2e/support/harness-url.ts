/** The URL of a test page (`db`, `net`, `store`, …) on the harness server that playwright.config.ts's global setup starts. */
export function harnessPage (page: string): string {
  const url = process.env.TIDELINE_HARNESS_URL
  if (url === undefined) throw new Error('TIDELINE_HARNESS_URL is not set: run through playwright.config.ts (its global setup serves the pages)')
  return `${url}/${page}/`
}
