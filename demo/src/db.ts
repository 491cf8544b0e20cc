import { openDatabase, type ArgsOf, type CallResult, type Database, type ProcedureName, type ResultOf } from '@tideline/db'
import { procedures } from './procedures.js'

/** How a page reaches its group: what `pnpm demo` serves at /group.json, or what a test injects. */
export interface DemoGroup {
  /** Relay WebSocket multiaddrs ending in /p2p/<id>. */
  readonly peers: readonly string[]
  readonly invite: string
  readonly creator: string
  /** The signed genesis (text); also names the local database, so a new group gets a fresh replica. */
  readonly genesis: string
  /** Relay health, proxied by the demo server (optional). */
  readonly healthUrl?: string
}

declare global {
  interface Window { __tidelineGroup?: DemoGroup }
}

export type DemoProcedures = typeof procedures
export type DemoDatabase = Database<DemoProcedures>
type Name = ProcedureName<DemoProcedures>

/** One call this tab made, for the latency histogram and the throughput chart. */
export interface CallSample {
  readonly at: number
  readonly ms: number
  readonly outcome: 'committed' | 'aborted' | 'error'
}

export const samples: CallSample[] = []
const MAX_SAMPLES = 5_000

export async function loadGroup (): Promise<DemoGroup> {
  if (window.__tidelineGroup !== undefined) return window.__tidelineGroup
  const r = await fetch('/group.json', { cache: 'no-store' })
  if (!r.ok) throw new Error(`no group configuration at /group.json (HTTP ${r.status}): start the demo with \`pnpm demo\``)
  return await r.json() as DemoGroup
}

async function shortHash (text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  return Array.from(d.slice(0, 6), b => b.toString(16).padStart(2, '0')).join('')
}

/** Opens this tab's replica of the group, holding only `partitions` (a page's boards, or the seats). */
export async function openDemo (group: DemoGroup, partitions: readonly number[]): Promise<DemoDatabase> {
  return await openDatabase({
    // One local database per group and set of partitions: a replica keeps the partitions it was made with.
    name: `demo-${await shortHash(group.genesis)}-p${[...partitions].sort((a, b) => a - b).join('.')}`,
    procedures,
    peers: [...group.peers],
    invite: group.invite,
    creator: group.creator,
    genesis: group.genesis,
    partitions,
    worker: () => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }),
    timeoutMs: 30_000
  })
}

/**
 * `db.call` that records this tab's latency and outcome; errors (timeouts,
 * bad arguments) are recorded and rethrown. Optimistic: the board shows the
 * call's effect at once (its subscriptions show the expected writes until the
 * final result), and an abort puts it back and says why.
 */
export async function timedCall<K extends Name> (db: DemoDatabase, name: K, args: ArgsOf<DemoProcedures, K>): Promise<CallResult<ResultOf<DemoProcedures, K>>> {
  const t0 = performance.now()
  const record = (outcome: CallSample['outcome']): void => {
    samples.push({ at: Date.now(), ms: performance.now() - t0, outcome })
    if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES)
  }
  try {
    const r = await db.call(name, args, { optimistic: true })
    record(r.status)
    return r
  } catch (err) {
    // Bad arguments never reach the network: not a latency sample.
    if ((err as Error).name !== 'InvalidArgumentError') record('error')
    throw err
  }
}

/** A human sentence for a call's outcome: the abort reason or the error's stable name. */
export function describeFailure (r: { status: 'aborted', error: string, reason: string } | Error): string {
  if (!(r instanceof Error)) return r.error === 'TransactionAbort' ? `${r.reason}.` : `${r.reason} (${plain(r.error)}).`
  return `${plain(r.name)}${r.name === 'InvalidArgumentError' ? `: ${r.message.replace(/^arguments of \w+ are invalid: /, '')}` : ''}.`
}

/** What a named error means to someone using the app; error classes stay out of the page (`err.name` is for code). */
function plain (name: string): string {
  switch (name) {
    case 'InvalidArgumentError': return 'that input is not accepted'
    case 'QuorumUnavailableError': return 'the relays did not answer in time; it may still go through, and trying again never applies it twice'
    case 'AbortError': return 'cancelled'
    case 'ProcedureHashMismatchError': return 'this page runs other code than the relays; reload it'
    case 'UnknownProcedureError': return 'the relays do not know this action; reload the page'
    case 'PeerClosedError': return 'this tab\'s database is closed; reload the page'
    case 'WorkerFailedError':
    case 'StoreFailedError': return 'this tab\'s database stopped (its storage failed); reload the page'
    case 'ValueTooLargeError': return 'that is too large to store'
    case 'NotMemberError':
    case 'InvalidCredentialError': return 'this tab is not admitted to the group (its invite was refused)'
    default: return 'something went wrong'
  }
}

/** A fresh id for a card (one per form submission). */
export function newId (): string {
  const b = new Uint8Array(8)
  crypto.getRandomValues(b)
  return Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
}
