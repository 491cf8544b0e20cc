import { hash64Lanes } from './hash.js'
import { canonical, type Value } from './value.js'

/**
 * An order-independent digest of a replica's state: the sum, lane by lane
 * modulo 2^32, of a 64-bit hash of every (key, value) pair (and, for a
 * snapshot's chunks, every exactly-once record it carries). Two copies of one state agree on it however their
 * entries were ordered or chunked; a changed, missing or extra entry changes
 * it (with the odds of a 64-bit hash). Not a defence against a forger: it
 * is what a snapshot's receiver checks its chunks against.
 */
export class StateDigest {
  private hi = 0
  private lo = 0

  private add (text: string, sign: 1 | -1): void {
    const [hi, lo] = hash64Lanes(text)
    this.hi = (this.hi + sign * hi) >>> 0
    this.lo = (this.lo + sign * lo) >>> 0
  }

  entry (key: string, value: Value): this {
    this.add(`v\u0000${key}\u0000${canonical(value)}`, 1)
    return this
  }

  /** The entry is gone (overwritten or deleted): its hash leaves the sum. */
  dropEntry (key: string, value: Value): this {
    this.add(`v\u0000${key}\u0000${canonical(value)}`, -1)
    return this
  }

  record (clientTxnId: string, record: string): this {
    this.add(`x\u0000${clientTxnId}\u0000${record}`, 1)
    return this
  }

  /** Another digest's pairs added to this one's (a whole snapshot's digest from its values' and its records'). */
  plus (lanes: readonly [number, number]): this {
    this.hi = (this.hi + lanes[0]) >>> 0
    this.lo = (this.lo + lanes[1]) >>> 0
    return this
  }

  /** The two lanes, to persist in a cursor and `restore`. */
  get lanes (): [number, number] {
    return [this.hi, this.lo]
  }

  static restore (lanes: readonly [number, number]): StateDigest {
    const d = new StateDigest()
    d.hi = lanes[0] >>> 0
    d.lo = lanes[1] >>> 0
    return d
  }

  /** The digest `value` printed (16 hex digits), back as a digest to go on from. */
  static parse (value: string): StateDigest {
    return StateDigest.restore([parseInt(value.slice(0, 8), 16), parseInt(value.slice(8, 16), 16)])
  }

  static valueOf (lanes: readonly [number, number]): string {
    return StateDigest.restore(lanes).value
  }

  get value (): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0')
  }

  static lanesOf (entries: ReadonlyArray<readonly [string, Value]>, records: ReadonlyArray<readonly [string, string]> = []): [number, number] {
    const d = new StateDigest()
    for (const [k, v] of entries) d.entry(k, v)
    for (const [id, r] of records) d.record(id, r)
    return d.lanes
  }
}
