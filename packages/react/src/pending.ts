import type { AnyDatabase } from './context.js'

/**
 * The calls this page has in flight through `useCall`, per database, with
 * the keys each declares it writes: a query whose keys one of them may write
 * shows `pending` until it settles.
 */
export class PendingCalls {
  private readonly calls = new Map<number, readonly string[]>()
  private readonly listeners = new Set<() => void>()
  private next = 0

  /** Registers a call that may write `writes`; returns the function that ends it. */
  add (writes: readonly string[]): () => void {
    const id = ++this.next
    this.calls.set(id, writes)
    this.changed()
    return () => { if (this.calls.delete(id)) this.changed() }
  }

  /** Whether a call in flight may write a key `matches` accepts. */
  touches (matches: (key: string) => boolean): boolean {
    for (const writes of this.calls.values()) if (writes.some(matches)) return true
    return false
  }

  subscribe (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private changed (): void {
    for (const l of this.listeners) l()
  }
}

const byDatabase = new WeakMap<AnyDatabase, PendingCalls>()

export function pendingCalls (db: AnyDatabase): PendingCalls {
  let p = byDatabase.get(db)
  if (p === undefined) {
    p = new PendingCalls()
    byDatabase.set(db, p)
  }
  return p
}
