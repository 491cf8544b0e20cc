import { PeerClosedError } from '../errors.js'
import type { Timestamp } from '../timestamp.js'
import type { ReadConsistency, ReadResult } from '../types.js'
import type { Value } from '../value.js'
import { confirmedTimestamp } from './confirm.js'
import type { PeerEnv } from './env.js'
import { fail, guard, requestTimestamp, type CallOptions } from './requests.js'
import { roleOf, type PendingRead, type PeerState } from './state.js'

/** Answers the strict reads whose timestamp the frontier has passed. */
export function serveReads (s: PeerState, env: PeerEnv): void {
  if (s.pendingReads.length === 0) return
  const ready = s.pendingReads.filter(r => r.ts < s.frontier)
  if (ready.length === 0) return
  s.pendingReads = s.pendingReads.filter(r => r.ts >= s.frontier)
  for (const r of ready) void readAt(env, r.keys, r.ts).then(r.resolve, err => { fail(s, env, err) })
}

export async function readAt (env: PeerEnv, keys: readonly string[], ts: Timestamp): Promise<ReadResult> {
  const found = await env.store.latestValues(keys, ts)
  const values: Record<string, Value> = {}
  for (let i = 0; i < keys.length; i++) {
    const v = found[i]
    if (v !== undefined) values[keys[i] as string] = v
  }
  return { ts, values }
}

/** A read-only transaction. Strict: at a voter-minted timestamp, waiting for the watermark. Snapshot: at this replica's frontier, at once. */
export async function serveRead (s: PeerState, env: PeerEnv, keys: readonly string[], consistency: ReadConsistency, options: CallOptions = {}): Promise<ReadResult> {
  if (s.failure !== undefined) throw new PeerClosedError(`peer ${s.id} failed: ${s.failure}`)
  if (consistency === 'snapshot') return await readAt(env, keys, s.frontier)
  const ts = roleOf(s) === 'voter' ? await confirmedTimestamp(s, env, options) : await requestTimestamp(s, env, options)
  return await new Promise<ReadResult>((resolve, reject) => {
    let release = (): void => {}
    const entry: PendingRead = { ts, keys, resolve: r => { release(); resolve(r) } }
    s.pendingReads.push(entry)
    release = guard(s, env, options, reject, () => { s.pendingReads = s.pendingReads.filter(r => r !== entry) })
    serveReads(s, env)
  })
}
