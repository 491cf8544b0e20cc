/**
 * The adaptive part of the failure detector. For each voter it keeps the
 * smoothed gap between messages heard from it and the gap's mean deviation
 * (smoothed as TCP smooths round trips, RFC 6298). A voter is suspected once
 * it has been silent for `suspectMinMs + mean + 4 × deviation`, and never
 * later than `suspectMs`. A voter heard from steadily (a busy one every few
 * milliseconds, an idle one at its heartbeat) is suspected soon after it
 * stops; one whose messages come irregularly (a starved CPU, a slow link)
 * gets a longer bound before anyone suspects it. Until a voter has been
 * heard from twice there is nothing to learn from, and the bound is
 * `suspectMs`.
 */

/** A voter's smoothed gap between messages and its mean deviation, in ms. */
export interface Gaps {
  mean: number
  dev: number
}

export interface DetectorState {
  /** Voter → its gaps, across epochs. */
  readonly gaps: Map<string, Gaps>
  /** The earliest wake-up the host was asked for since the last step (Infinity: none); a step much later than it means this peer stalled. */
  dueAt: number
  /** Whether this voter is quiet: idle, it has stopped its heartbeat (quiesce.ts). */
  quiet: boolean
}

export const newDetectorState = (): DetectorState => ({ gaps: new Map(), dueAt: Infinity, quiet: false })

/** Smooths one more gap between two messages from `v` into its figures. */
export function noteGap (d: DetectorState, v: string, gap: number): void {
  const g = d.gaps.get(v)
  if (g === undefined) {
    d.gaps.set(v, { mean: gap, dev: gap / 2 })
    return
  }
  g.dev += (Math.abs(gap - g.mean) - g.dev) / 4
  g.mean += (gap - g.mean) / 8
}

/** How long `v` may stay silent before it is suspected: whole milliseconds, as every time the protocol schedules. */
export function silenceBound (d: DetectorState, v: string, minMs: number, maxMs: number): number {
  const g = d.gaps.get(v)
  if (g === undefined) return maxMs
  return Math.min(maxMs, Math.ceil(minMs + g.mean + 4 * g.dev))
}
