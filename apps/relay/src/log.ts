import { LOG_EVENTS, logLevelOf, type LogLevel } from '@tideline/core'

/** Structured logs: one JSON object per line on stdout (`ts`, `level`, `event`, then details). */
export type Level = LogLevel

export interface RelayLogger {
  (event: string, detail?: Record<string, unknown>, level?: Level): void
}

/** Events the transport and membership report that mean something went wrong (logged as warnings). */
const TRANSPORT_WARN_EVENTS = new Set(['junk', 'disconnect-junk', 'refused-non-member', 'join-refused', 'send-failed', 'gossip-failed', 'join-failed', 'worker-failed'])

/** The level of an event: the protocol's own table for protocol events, warn for the transport's troubles, info otherwise. */
export function levelOf (event: string): Level {
  if (event in LOG_EVENTS) return logLevelOf(event)
  return TRANSPORT_WARN_EVENTS.has(event) ? 'warn' : 'info'
}

export function jsonLogger (fields: Record<string, unknown>, write: (line: string) => void = l => { process.stdout.write(l) }): RelayLogger {
  return (event, detail = {}, level) => {
    write(`${JSON.stringify({ ts: new Date().toISOString(), level: level ?? levelOf(event), event, ...fields, ...detail })}\n`)
  }
}
