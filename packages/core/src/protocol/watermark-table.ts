import { TS_ZERO, type Timestamp } from '../timestamp.js'
import type { WatermarkEntry } from '../types.js'

/**
 * Every voter's latest watermark entry, merged by max (stale gossip can never
 * lower it). The group watermark V is the minimum over the voters: below V,
 * every thunk is on a majority and the history is fixed.
 */
export class WatermarkTable {
  private readonly voters: readonly string[]
  private readonly epoch: number
  private readonly table = new Map<string, WatermarkEntry>()
  private cached: Timestamp = TS_ZERO
  /** Set while this voter is the entry hub: other voters' entries raised since it last relayed them. */
  relaying = false
  private readonly fresh = new Set<string>()

  constructor (voters: readonly string[], epoch: number) {
    this.voters = voters
    this.epoch = epoch
  }

  /** Merges one entry; returns true when it raised that voter's entry. */
  merge (entry: WatermarkEntry): boolean {
    if (entry.epoch !== this.epoch || !this.voters.includes(entry.voter)) return false
    const old = this.table.get(entry.voter)
    if (old !== undefined && (old.svw > entry.svw || (old.svw === entry.svw && old.count >= entry.count))) return false
    this.table.set(entry.voter, entry)
    if (this.relaying) this.fresh.add(entry.voter)
    this.recompute()
    return true
  }

  /** The entries raised since the last call, other than `own` (the hub relays them). */
  takeFresh (own: string): WatermarkEntry[] {
    const out: WatermarkEntry[] = []
    for (const v of this.fresh) {
      const e = this.table.get(v)
      if (v !== own && e !== undefined) out.push(e)
    }
    this.fresh.clear()
    return out
  }

  get (voter: string): WatermarkEntry | undefined {
    return this.table.get(voter)
  }

  entries (): WatermarkEntry[] {
    return [...this.table.values()]
  }

  /** The group watermark V; TS_ZERO until every voter has been heard from. */
  get value (): Timestamp {
    return this.cached
  }

  private recompute (): void {
    let min: Timestamp | undefined
    for (const v of this.voters) {
      const e = this.table.get(v)
      if (e === undefined) {
        this.cached = TS_ZERO
        return
      }
      if (min === undefined || e.svw < min) min = e.svw
    }
    this.cached = min ?? TS_ZERO
  }
}
