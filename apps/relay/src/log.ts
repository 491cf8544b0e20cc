/** Structured logs: one JSON object per line on stdout (`ts`, `level`, `event`, then details). */
export type Level = 'debug' | 'info' | 'warn' | 'error'

export interface RelayLogger {
  (event: string, detail?: Record<string, unknown>, level?: Level): void
}

/** Events the protocol and transport report that mean something went wrong (logged as warnings). */
const WARN_EVENTS = new Set(['junk', 'disconnect-junk', 'refused-non-member', 'join-refused', 'send-failed', 'gossip-failed', 'store-failed', 'handler-error'])

export function jsonLogger (fields: Record<string, unknown>, write: (line: string) => void = l => { process.stdout.write(l) }): RelayLogger {
  return (event, detail = {}, level) => {
    const lvl = level ?? (WARN_EVENTS.has(event) ? 'warn' : 'info')
    write(`${JSON.stringify({ ts: new Date().toISOString(), level: lvl, event, ...fields, ...detail })}\n`)
  }
}
