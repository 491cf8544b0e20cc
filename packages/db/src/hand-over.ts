import type { Logger, Peer } from '@tideline/core'

/** How long a voter tab may stay hidden before it hands over (a quick switch to another tab and back keeps it a voter). */
export const HAND_OVER_GRACE_MS = 1_000
/** How long a hand-over (an epoch change without this tab) may take before it is given up (the failure detector then acts). */
const LEAVE_TIMEOUT_MS = 10_000

/** A voter tab's page lifecycle, as `status().handOver` shows it. */
export interface HandOverStatus {
  /** Whether the page is visible (and not frozen): only then does the tab ask to be a voter. */
  readonly visible: boolean
  /** Hand-overs started: the page was hidden past the grace period, hidden for good (`pagehide`), or frozen. */
  readonly handovers: number
  /** Hand-overs the group installed (an epoch without this tab). */
  readonly handedOver: number
  /** Times the tab, shown again after it handed over (or was hidden past the grace period), asked to be voted back in. */
  readonly asks: number
}

type Listener = [target: EventTarget, type: string, fn: () => void]

/**
 * A voter tab's page lifecycle (docs/design/tabs.md §3). A browser throttles
 * a hidden tab's timers and may freeze it, which would stall every commit of
 * the group until the failure detector voted it out. So a voter tab hidden
 * past `graceMs`, or whose page is hidden for good (`pagehide`) or frozen
 * (`freeze`), stops asking to be a voter and hands over: it proposes the next
 * epoch without itself (core `leave`). Shown again (`visibilitychange` to
 * visible, `pageshow`, `resume`), it asks to be voted back in (core
 * `setCandidate`), which the voters grant once it keeps up and if its invite
 * grants the voter role. Outside a page (no `document`) it only asks.
 */
export class HandOver {
  private readonly peer: Peer
  private readonly graceMs: number
  private readonly logger: Logger | undefined
  private readonly listeners: Listener[] = []
  private readonly stopEpochs: () => void
  /** Whether it handed over (or stopped asking past the grace period) since it was last shown: shown again, it asks back. */
  private away = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private visible = true
  private handovers = 0
  private handedOver = 0
  private asks = 0

  constructor (peer: Peer, options: { readonly graceMs?: number, readonly logger?: Logger | undefined } = {}) {
    this.peer = peer
    this.graceMs = options.graceMs ?? HAND_OVER_GRACE_MS
    this.logger = options.logger
    // Voted in while hidden (an epoch change under way when it stopped asking): it hands over again at once.
    this.stopEpochs = peer.onEpoch(() => { if (!this.visible && this.timer === undefined) this.handOver() })
    const doc = (globalThis as { document?: Document }).document
    if (doc === undefined) return
    // The window's events, where there is one (a page; not a worker, nor Node).
    const win = typeof (globalThis as Partial<EventTarget>).addEventListener === 'function' ? globalThis as unknown as EventTarget : undefined
    this.listen(doc, 'visibilitychange', () => { if (doc.visibilityState === 'hidden') this.hidden(this.graceMs); else this.shown() })
    if (win !== undefined) this.listen(win, 'pagehide', () => { this.hidden(0) })
    this.listen(doc, 'freeze', () => { this.hidden(0) })
    if (win !== undefined) this.listen(win, 'pageshow', () => { if (doc.visibilityState === 'visible') this.shown() })
    this.listen(doc, 'resume', () => { if (doc.visibilityState === 'visible') this.shown() })
    // Opened in a background tab: it does not ask until it is shown.
    if (doc.visibilityState === 'hidden') this.hidden(this.graceMs)
  }

  status (): HandOverStatus {
    return { visible: this.visible, handovers: this.handovers, handedOver: this.handedOver, asks: this.asks }
  }

  stop (): void {
    this.stopEpochs()
    clearTimeout(this.timer)
    for (const [target, type, fn] of this.listeners) target.removeEventListener(type, fn)
    this.listeners.length = 0
  }

  private listen (target: EventTarget, type: string, fn: () => void): void {
    target.addEventListener(type, fn)
    this.listeners.push([target, type, fn])
  }

  /** Hidden (or going, or frozen): hands over after `delayMs` unless shown meanwhile. */
  private hidden (delayMs: number): void {
    this.visible = false
    // It does not become a voter while hidden.
    this.peer.setCandidate(false)
    if (delayMs > 0) {
      this.timer ??= setTimeout(() => { this.handOver() }, delayMs)
      return
    }
    clearTimeout(this.timer)
    this.handOver()
  }

  private handOver (): void {
    this.timer = undefined
    if (this.visible) return
    this.away = true
    if (this.peer.role !== 'voter') return
    this.handovers++
    this.logger?.('hand-over', { epoch: this.peer.config.epoch })
    this.peer.leave({ timeoutMs: LEAVE_TIMEOUT_MS }).then(
      () => { this.handedOver++ },
      (err: unknown) => { this.logger?.('hand-over-failed', { error: (err as Error).message }) })
  }

  private shown (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.visible) return
    this.visible = true
    // Calls off a hand-over under way, or asks to be voted back in (or, back within the grace period, asks on).
    this.peer.setCandidate(true)
    if (!this.away) return
    this.away = false
    this.asks++
    this.logger?.('ask-to-vote', { epoch: this.peer.config.epoch })
  }
}
