import type { Message } from '../messages.js'
import type { Effect } from './effects.js'
import type { PeerState } from './state.js'
import type { Counter, LogEvent } from './vocabulary.js'

/** What handlers call to produce effects and count: each appends to the step's effects. */

export function count (s: PeerState, name: Counter, n = 1): void {
  s.counters[name] = (s.counters[name] ?? 0) + n
}

export function emit (s: PeerState, effect: Effect): void {
  s.effects.push(effect)
}

export function log (s: PeerState, event: LogEvent, detail: Record<string, unknown>): void {
  s.effects.push({ t: 'log', event, detail })
}

export function send (s: PeerState, to: string, message: Message): void {
  if (s.phase === 'closed' || to === s.id) return
  s.effects.push({ t: 'send', to, message })
}

/** Answers a local call. */
export function settle (s: PeerState, call: number, value: unknown, error?: Error): void {
  s.effects.push(error === undefined ? { t: 'settle', call, value } : { t: 'settle', call, error })
}

export function errorInfo (err: unknown): { name: string, message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message }
  return { name: 'Error', message: String(err) }
}
