import { canonical, hash64, type TxnResult, type Value } from '@tideline/core'
import type { NetClient } from '@tideline/net-libp2p'
import type { History, ListMop, Op, ReplicaFinal } from '@tideline/sim'
import { workloadRegistry } from '@tideline/workloads'
import type { RelayProcess } from './local-group.js'

export const INITIAL_BALANCE = 100
export const ACCOUNTS = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']
export const LIST_KEYS = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5']
const hashOf = (p: string): string => workloadRegistry.procedures.get(p)?.hash ?? ''

/** Errors after which a call certainly had no effect (refused before it got a timestamp). */
const REFUSED = new Set(['UnknownProcedureError', 'ProcedureHashMismatchError', 'InvalidValueError', 'ValueTooLargeError', 'NotMemberError'])

/**
 * Records what clients observed, in the simulator's history format, with
 * wall-clock (performance.now) times: the checker then judges real processes
 * exactly as it judges simulated ones.
 */
export class Recorder {
  readonly ops: Op[] = []
  private nextId = 0
  private nextValue = 1
  private nextProcess = 0
  readonly unexpected: string[] = []
  /** Every list key the clients used (what `finals` reads). */
  readonly listKeysUsed = new Set<string>(LIST_KEYS)

  /**
   * With `rotateListsAfter`, the clients move on to six fresh list keys after
   * that many appends (`g.x0`…`g.x5` for generation g), so no list grows
   * without bound: a soak's live state then stays the same size, as a real
   * application's does, instead of every append rewriting an ever longer
   * list. Without it the six keys of LIST_KEYS take every append.
   */
  constructor (private readonly rotateListsAfter?: number) {}

  /** The list keys appends and reads go to now. */
  listKeys (): readonly string[] {
    if (this.rotateListsAfter === undefined) return LIST_KEYS
    const g = Math.floor((this.nextValue - 1) / this.rotateListsAfter)
    const keys = LIST_KEYS.map(k => `${g}.${k}`)
    for (const k of keys) this.listKeysUsed.add(k)
    return keys
  }

  opId (): number { return this.nextId++ }
  value (): number { return this.nextValue++ }
  process (): number { return this.nextProcess++ }
  now (): number { return performance.now() }

  history (finals: ReplicaFinal[]): History {
    return { ops: [...this.ops].sort((a, b) => a.id - b.id), bankTotal: INITIAL_BALANCE * ACCOUNTS.length, accounts: ACCOUNTS, finals }
  }

  count (outcome: Op['outcome']): number {
    return this.ops.filter(o => o.outcome === outcome).length
  }
}

function pick<T> (xs: readonly T[]): T {
  return xs[Math.floor(Math.random() * xs.length)] as T
}

/** One closed-loop client until `enough()`: transfers, strict bank reads, list-append transactions. */
async function clientLoop (client: NetClient, rec: Recorder, enough: () => boolean, tag: string): Promise<void> {
  let proc = rec.process()
  let n = 0
  while (!enough()) {
    const id = rec.opId()
    const invokeTime = rec.now()
    const r = Math.random()
    if (r < 0.15) {
      try {
        const res = await client.read(ACCOUNTS.map(a => `acct/${a}`), 'strict')
        const balances: Record<string, number> = {}
        for (const a of ACCOUNTS) balances[a] = (res.values[`acct/${a}`] as number | undefined) ?? INITIAL_BALANCE
        rec.ops.push({ kind: 'bank-read', id, process: proc, invokeTime, completeTime: rec.now(), outcome: 'ok', realTime: true, balances })
      } catch {
        // a failed read has no effect: nothing to record
      }
      continue
    }
    const isTransfer = r < 0.55
    const from = pick(ACCOUNTS)
    const to = pick(ACCOUNTS.filter(a => a !== from))
    const amount = 1 + Math.floor(Math.random() * 5)
    const listKeys = rec.listKeys()
    const mops: ListMop[] = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () =>
      Math.random() < 0.5 ? { f: 'append', key: pick(listKeys), value: rec.value() } : { f: 'r', key: pick(listKeys), value: null })
    const procedure = isTransfer ? 'transfer' : 'listTxn'
    const args = (isTransfer ? { from, to, amount } : { mops: mops.map(m => m.f === 'append' ? { f: 'append', k: m.key, v: m.value } : { f: 'r', k: m.key }) }) as unknown as Value
    let result: TxnResult | undefined
    let outcome: Op['outcome']
    try {
      result = await client.call({ clientTxnId: `${tag}-${n++}`, procedure, hash: hashOf(procedure), args })
      outcome = result.status === 'committed' ? 'ok' : 'fail'
      if (result.status === 'aborted' && result.error !== 'TransactionAbort') rec.unexpected.push(`${tag} ${procedure} aborted: ${result.error} ${result.reason}`)
    } catch (err) {
      outcome = REFUSED.has((err as Error).name) ? 'fail' : 'info'
    }
    const base = { id, process: proc, invokeTime, completeTime: outcome === 'info' ? undefined : rec.now(), outcome, realTime: true }
    if (isTransfer) {
      rec.ops.push({ kind: 'transfer', from, to, amount, ...base })
    } else {
      const reads = result?.status === 'committed' ? result.value as number[][] : []
      let i = 0
      rec.ops.push({ kind: 'list', mops: mops.map(m => m.f === 'r' ? { f: 'r', key: m.key, value: outcome === 'ok' ? reads[i++] ?? [] : null } : m), ...base })
    }
    // A client whose op's outcome is unknown may still see it land: later ops come from a new process.
    if (outcome === 'info') proc = rec.process()
  }
}

/**
 * Runs every client for `durationMs`; with `minOk`, keeps going (up to
 * `maxMs`) until at least that many transactions of this phase committed,
 * so a slow machine still produces a history worth checking. With `until`,
 * runs until it returns true instead.
 */
export async function runWorkload (clients: readonly NetClient[], rec: Recorder, durationMs: number, phase: string, options: { minOk?: number, maxMs?: number, until?: () => boolean } = {}): Promise<void> {
  const start = rec.now()
  const okBefore = rec.count('ok')
  const enough = (): boolean => {
    if (options.until !== undefined) return options.until()
    const t = rec.now() - start
    if (t < durationMs) return false
    return options.minOk === undefined || rec.count('ok') - okBefore >= options.minOk || t >= (options.maxMs ?? durationMs)
  }
  await Promise.all(clients.map(async (c, i) => clientLoop(c, rec, enough, `${phase}-c${i}`)))
}

/** Polls `check` every 20 ms until it holds (errors count as not yet); returns the ms it took, or throws naming `what`. */
export async function waitUntil (what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < timeoutMs) {
    if (await check().catch(() => false)) return performance.now() - started
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`)
}

/** Polls every relay until all evaluated the same transactions and hold nothing unevaluated. */
export async function waitQuiescent (relays: readonly RelayProcess[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    const hs = await Promise.all(relays.map(async r => r.health().catch(() => undefined)))
    last = JSON.stringify(hs.map(h => h === undefined ? 'down' : { e: h.evaluated, l: h.lastEvaluated, u: h.unevaluated, i: h.inflight }))
    if (hs.every(h => h !== undefined && h.unevaluated === 0 && h.inflight === 0 && h.evaluated === hs[0]?.evaluated && h.lastEvaluated === hs[0]?.lastEvaluated)) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`relays did not quiesce within ${timeoutMs} ms: ${last}`)
}

/** Each relay's final state (the bank and the lists `listKeys`: a Recorder's `listKeysUsed`), read from that relay alone, plus its rolling result digest. */
export async function finals (client: NetClient, relays: readonly RelayProcess[], listKeys: Iterable<string> = LIST_KEYS): Promise<ReplicaFinal[]> {
  const lk = [...listKeys]
  const keys = [...ACCOUNTS.map(a => `acct/${a}`), ...lk.map(k => `l/${k}`)]
  // A read takes at most 1,024 keys: the lists of a long run are read a thousand at a time.
  const readAll = async (voter: string): Promise<{ values: Record<string, Value> }> => {
    const values: Record<string, Value> = {}
    for (let i = 0; i < keys.length; i += 1_000) Object.assign(values, (await client.read(keys.slice(i, i + 1_000), 'snapshot', { voter })).values)
    return { values }
  }
  return Promise.all(relays.map(async r => {
    const [read, h] = await Promise.all([readAll(r.id), r.health()])
    const balances: Record<string, number> = {}
    const lists: Record<string, number[]> = {}
    for (const a of ACCOUNTS) balances[a] = (read.values[`acct/${a}`] as number | undefined) ?? INITIAL_BALANCE
    for (const k of lk) lists[k] = (read.values[`l/${k}`] as number[] | undefined) ?? []
    return { peer: r.id, balances, lists, stateDigest: hash64(canonical({ balances, lists })), resultDigest: h.digest, evaluatedThrough: h.lastEvaluated }
  }))
}
