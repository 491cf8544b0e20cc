import { batchStatement, toHex, type Batch, type Message } from '@tideline/core'
import type { EventLoop } from './event-loop.js'
import type { SimKeyring } from './keyring.js'
import type { Rng } from './rng.js'

/** The member that passes batches on: not a voter, not in the simulated group's peers, a tab the simulator plays. */
export const FORWARDER = 'f0'

export interface ForwarderStats {
  /** Copies of batches passed on unaltered (some twice, some late). */
  forwarded: number
  /** Copies passed on forged: a thunk changed, the signature broken, or a batch made up and signed with the forwarder's own key. */
  forgedForwarded: number
  /** Copies passed on with their signature taken off. */
  unsignedForwarded: number
  /** Messages an observer passed down the dissemination tree forged: a batch's thunk changed, or a tree watermark's entry raised. */
  forgedDown: number
}

/**
 * A member that holds what the voters send an observer and passes it on to
 * that observer (issue 23's forwarding tabs): late, twice, or not at all,
 * and sometimes forged. Every forged copy must be refused: the history
 * checker and the replicas' digests tell if one was taken.
 */
export class Forwarder {
  readonly stats: ForwarderStats = { forwarded: 0, forgedForwarded: 0, unsignedForwarded: 0, forgedDown: 0 }

  constructor (
    private readonly rng: Rng,
    private readonly keyring: SimKeyring,
    private readonly groupId: string,
    private readonly loop: EventLoop,
    private readonly deliver: (from: string, to: string, m: Message) => void
  ) {}

  /**
   * A `write` on its way to observer `to`: perhaps a copy comes from the
   * forwarder too. True when the original is to be lost on the way, so that
   * the observer has only the forwarder's copy (or a gap fill from a voter).
   */
  saw (to: string, m: Extract<Message, { t: 'write' }>): boolean {
    if (!this.rng.chance(0.3) || !m.batches.every(b => b.sig !== undefined)) return false
    const batches = structuredClone(m.batches) as Batch[]
    const way = this.rng.int(0, 19)
    const first = batches[0] as Batch & { sig?: string, thunks: Array<{ args: unknown }> }
    const thunk = first.thunks[0] as { args: unknown }
    if (way === 16) {
      thunk.args = { forged: thunk.args as never }
      this.stats.forgedForwarded++
    } else if (way === 17) {
      first.sig = `${first.sig?.slice(0, 2) === 'ff' ? '00' : 'ff'}${first.sig?.slice(2) ?? ''}`
      this.stats.forgedForwarded++
    } else if (way === 18) {
      delete first.sig
      this.stats.unsignedForwarded++
    } else if (way === 19) {
      // Made up and signed, but with the forwarder's key, not the coordinator's.
      thunk.args = { forged: thunk.args as never }
      const statement = batchStatement(this.groupId, first)
      if (statement !== undefined) first.sig = toHex(this.keyring.signer(FORWARDER).sign(statement) as Uint8Array)
      this.stats.forgedForwarded++
    } else {
      this.stats.forwarded++
    }
    const copies = this.rng.chance(0.1) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      const delay = this.rng.chance(0.2) ? this.rng.int(50, 400) : this.rng.int(0, 5)
      this.loop.after(delay, () => { this.deliver(FORWARDER, to, { t: 'write', batches: structuredClone(batches), wm: [] }) })
    }
    return this.rng.chance(0.3)
  }

  /**
   * A parent in the dissemination tree forges what it passes down (in
   * place): a thunk's arguments in a batch (passed on, or answering its
   * child's gap request), or an entry raised far past any
   * promise in a tree watermark message. Its children must refuse it, strike
   * it out, and find another place.
   */
  forgeDown (m: Message): void {
    if ((m.t === 'write' || m.t === 'gap-rep') && m.batches.length > 0) {
      const thunk = (m.batches[0] as Batch).thunks[0] as { args: unknown } | undefined
      if (thunk === undefined) return
      thunk.args = { forged: thunk.args as never }
    } else if (m.t === 'tw' && m.wm.length > 0) {
      const w = m.wm as unknown as Array<{ svw: string, count: number }>
      const e = w[0] as { svw: string, count: number }
      // Past batches not yet sent (taken, it would evaluate before them), or past batches that never come.
      e.svw = `${(parseInt(e.svw.slice(0, 12), 16) + 60_000).toString(16).padStart(12, '0')}${e.svw.slice(12)}`
      if (this.rng.chance(0.5)) e.count += 1
    } else {
      return
    }
    this.stats.forgedDown++
  }
}
