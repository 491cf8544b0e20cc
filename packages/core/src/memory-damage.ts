import { StoreCorruptionError } from './errors.js'
import { damageId, type DamageTarget } from './record-check.js'

/**
 * The records of a MemoryStore a test or the simulator damaged (`damageId`s).
 * MemoryStore keeps objects, not bytes, so a damaged record is one the store
 * says failed its check, as LevelStore and IdbStore find by their checksums:
 * it is never answered, and stays damaged until it is written again (a
 * batch or meta record) or replaced by a snapshot (values and records).
 */
export class DamageSet {
  private readonly ids = new Set<string>()

  add (target: DamageTarget): void {
    this.ids.add(damageId(target))
  }

  get size (): number {
    return this.ids.size
  }

  /** Throws StoreCorruptionError when the record `id` is damaged. */
  check (id: string): void {
    if (this.ids.size > 0 && this.ids.has(id)) throw new StoreCorruptionError(`record ${id} failed its check`)
  }

  has (id: string): boolean {
    return this.ids.size > 0 && this.ids.has(id)
  }

  /** The record was written again whole. */
  repaired (id: string): void {
    if (this.ids.size > 0) this.ids.delete(id)
  }

  /** Whether a value or an exactly-once record is damaged (what a snapshot repairs). */
  get inState (): boolean {
    for (const id of this.ids) if (id.startsWith('v|') || id.startsWith('x|')) return true
    return false
  }

  /** Values and records are replaced by a snapshot: their damage goes with them. */
  replacedState (): void {
    for (const id of this.ids) if (id.startsWith('v|') || id.startsWith('x|')) this.ids.delete(id)
  }

  /** Damage on the disk outlives a crash. */
  copyTo (other: DamageSet): void {
    for (const id of this.ids) other.ids.add(id)
  }
}
