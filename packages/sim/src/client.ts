import type { Message, ReadResult, SubmitRequest, TxnResult, Value } from '@tideline/core'
import type { EventLoop } from './event-loop.js'
import type { ListMop, Op } from './history.js'
import { INITIAL_BALANCE, accountKey, listKey, simRegistry, type ListMopArgs } from './procedures.js'
import type { Rng } from './rng.js'

/** What a client wants to do next. */
export type Intent =
  | { readonly kind: 'list', readonly mops: readonly ListMopArgs[] }
  | { readonly kind: 'transfer', readonly from: string, readonly to: string, readonly amount: number }
  | { readonly kind: 'bank-read', readonly consistency: 'strict' | 'snapshot' }
  /**
   * A read-only transaction over list keys, through the read API; with
   * `range`, a range read of the list keys from `start` up to `end` (`keys`
   * are then every list key in it, recorded read as they were or as empty).
   */
  | { readonly kind: 'list-read', readonly keys: readonly string[], readonly range?: { readonly start: string, readonly end?: string, readonly reverse: boolean }, readonly consistency: 'strict' | 'snapshot' }

export interface ClientInit {
  readonly id: string
  readonly process: number
  readonly loop: EventLoop
  readonly rng: Rng
  readonly peers: () => readonly string[]
  readonly send: (to: string, m: Message) => void
  /** `viaRead` marks read-only transactions served by the read API. */
  readonly record: (op: Op, viaRead: boolean) => void
  readonly accounts: readonly string[]
  readonly timeoutMs: number
  readonly maxAttempts: number
  /** Draws the next intent, or undefined when this client is done. */
  readonly next: () => Intent | undefined
  readonly nextOpId: () => number
  /** Pause between one op's completion and the next op, virtual ms. */
  readonly thinkMs: () => number
  /** Counts a retry refused as expired (its outcome is recorded as unknown). */
  readonly expired: () => void
  /** Reports an abort whose error the workload's procedures never raise. */
  readonly unexpected: (message: string) => void
  /** Signs a submission as this client (a group of signed calls). */
  readonly sign?: (req: SubmitRequest & { readonly firstAt: number }) => SubmitRequest
  /** Whether a fault forged an attempt of this clientTxnId on the wire (its ForgedCallError is expected). */
  readonly forged?: (clientTxnId: string) => boolean
  /** Whether this client was revoked (a PermissionDeniedError is then expected). */
  readonly revoked?: () => boolean
  /** Counts a forged attempt the group refused. */
  readonly refusedForged?: () => void
}

/**
 * Errors that prove a submission was refused before it got a timestamp.
 * Not ClockSkewError: that depends on the coordinator's clock, and an
 * earlier attempt may have got a timestamp from another one.
 */
const REFUSED = new Set(['UnknownProcedureError', 'ProcedureHashMismatchError', 'InvalidValueError', 'ValueTooLargeError', 'ProcedureError'])

/**
 * A closed-loop client outside the group: it talks to a random peer over the
 * simulated network, times out, and retries elsewhere with the same
 * clientTxnId, recording what it observed.
 */
export class SimClient {
  private readonly init: ClientInit
  private current: { intent: Intent, opId: number, invokeTime: number, attempt: number, token: string, txnId: string } | undefined
  done = false

  constructor (init: ClientInit) {
    this.init = init
  }

  start (): void {
    this.issue()
  }

  private issue (): void {
    const intent = this.init.next()
    if (intent === undefined) {
      this.done = true
      this.current = undefined
      return
    }
    const opId = this.init.nextOpId()
    this.current = { intent, opId, invokeTime: this.init.loop.now, attempt: 0, token: '', txnId: `${this.init.id}-${opId}` }
    this.attempt()
  }

  private attempt (): void {
    const c = this.current
    if (c === undefined) return
    c.attempt++
    c.token = `${c.txnId}/${c.attempt}`
    const to = this.init.rng.pick(this.init.peers())
    const i = c.intent
    if (i.kind === 'bank-read' || i.kind === 'list-read') {
      const keys = i.kind === 'bank-read' ? this.init.accounts.map(accountKey) : i.keys.map(listKey)
      const range = i.kind === 'list-read' && i.range !== undefined
        ? { range: { start: listKey(i.range.start), ...(i.range.end === undefined ? {} : { end: listKey(i.range.end) }) }, reverse: i.range.reverse }
        : undefined
      this.init.send(to, range === undefined ? { t: 'read', reqId: c.token, keys, consistency: i.consistency, replyTo: this.init.id } : { t: 'read', reqId: c.token, keys: [], range, consistency: i.consistency, replyTo: this.init.id })
    } else {
      const procedure = i.kind === 'list' ? 'listTxn' : 'transfer'
      const args = (i.kind === 'list' ? { mops: i.mops } : { from: i.from, to: i.to, amount: i.amount }) as unknown as Value
      const hash = simRegistry.procedures.get(procedure)?.hash ?? ''
      const req = { clientTxnId: c.txnId, procedure, hash, args, firstAt: c.invokeTime }
      this.init.send(to, { t: 'submit', req: this.init.sign?.(req) ?? req, replyTo: this.init.id })
    }
    const token = c.token
    this.init.loop.after(this.init.timeoutMs, () => { this.onTimeout(token) })
  }

  private onTimeout (token: string): void {
    const c = this.current
    if (c === undefined || c.token !== token) return
    if (c.attempt < this.init.maxAttempts) {
      this.attempt()
      return
    }
    this.finish(undefined, undefined)
  }

  receive (m: Message): void {
    const c = this.current
    if (c === undefined) return
    const isRead = c.intent.kind === 'bank-read' || c.intent.kind === 'list-read'
    if (m.t === 'submit-rep' && m.clientTxnId === c.txnId && !isRead) {
      if (m.result !== undefined) this.finish(m.result, undefined)
      else if (m.error !== undefined && REFUSED.has(m.error.name)) this.finish(undefined, m.error.name)
      // any other error: the peer could not serve; the timeout retries elsewhere
    } else if (m.t === 'read-rep' && m.reqId === c.token && isRead) {
      if (m.result !== undefined) this.finishRead(m.result)
    }
  }

  private base (outcome: Op['outcome'], realTime: boolean): { id: number, process: number, invokeTime: number, completeTime: number | undefined, outcome: Op['outcome'], realTime: boolean } {
    const c = this.current as NonNullable<SimClient['current']>
    return { id: c.opId, process: this.init.process, invokeTime: c.invokeTime, completeTime: outcome === 'info' ? undefined : this.init.loop.now, outcome, realTime }
  }

  private finishRead (result: ReadResult): void {
    const c = this.current as NonNullable<SimClient['current']>
    const i = c.intent
    if (i.kind === 'list-read') {
      if (i.range !== undefined) {
        // A range read answers its keys in order (descending when reversed), and only keys inside it.
        const got = (result.entries ?? []).map(([k]) => k)
        const sorted = [...got].sort()
        if (i.range.reverse) sorted.reverse()
        const inside = new Set(i.keys.map(listKey))
        if (got.join('\n') !== sorted.join('\n') || got.some(k => !inside.has(k))) throw new Error(`range read ${JSON.stringify(i.range)} answered ${JSON.stringify(got)}`)
      }
      const mops: ListMop[] = i.keys.map(k => ({ f: 'r', key: k, value: (result.values[listKey(k)] as number[] | undefined) ?? [] }))
      this.init.record({ kind: 'list', mops, ...this.base('ok', i.consistency === 'strict') }, true)
      this.pause()
      return
    }
    if (i.kind !== 'bank-read') return
    const balances: Record<string, number> = {}
    for (const a of this.init.accounts) balances[a] = (result.values[accountKey(a)] as number | undefined) ?? INITIAL_BALANCE
    this.init.record({ kind: 'bank-read', balances, ...this.base('ok', i.consistency === 'strict') }, true)
    this.pause()
  }

  private finish (result: TxnResult | undefined, refused: string | undefined): void {
    const c = this.current as NonNullable<SimClient['current']>
    const i = c.intent
    // A retry past the retention: whether an earlier attempt took effect is not known.
    const expired = result?.status === 'aborted' && result.error === 'ExpiredTransactionError'
    if (expired) this.init.expired()
    // A forged attempt aborts with no effect; an earlier attempt elsewhere may still commit, so the outcome is unknown.
    const forged = result?.status === 'aborted' && (
      ((result.error === 'ForgedCallError' || result.error === 'PermissionDeniedError') && this.init.forged?.(c.txnId) === true) ||
      (result.error === 'PermissionDeniedError' && this.init.revoked?.() === true))
    if (forged) this.init.refusedForged?.()
    if (result?.status === 'aborted' && result.error !== 'TransactionAbort' && !expired && !forged) this.init.unexpected(`${c.txnId} aborted with ${result.error}: ${result.reason}`)
    const outcome: Op['outcome'] = result === undefined || expired || forged ? (refused !== undefined ? 'fail' : 'info') : result.status === 'committed' ? 'ok' : 'fail'
    if (i.kind === 'list') {
      const reads = result?.status === 'committed' ? result.value as number[][] : []
      let r = 0
      const mops: ListMop[] = i.mops.map(m => m.f === 'append'
        ? { f: 'append', key: m.k, value: m.v }
        : { f: 'r', key: m.k, value: outcome === 'ok' ? (reads[r++] ?? null) : null })
      this.init.record({ kind: 'list', mops, ...this.base(outcome, true) }, false)
    } else if (i.kind === 'transfer') {
      this.init.record({ kind: 'transfer', from: i.from, to: i.to, amount: i.amount, ...this.base(outcome, true) }, false)
    } else if (i.kind === 'list-read') {
      this.init.record({ kind: 'list', mops: i.keys.map(k => ({ f: 'r', key: k, value: null })), ...this.base('info', i.consistency === 'strict') }, true)
    } else {
      this.init.record({ kind: 'bank-read', ...this.base('info', i.consistency === 'strict') }, true)
    }
    this.pause()
  }

  private pause (): void {
    this.current = undefined
    this.init.loop.after(this.init.thinkMs(), () => { this.issue() })
  }
}
