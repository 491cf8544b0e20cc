import type { Effect, Input } from './protocol/effects.js'
import { openSnapshotReader, openSnapshotWriter, type SnapshotWriter } from './snapshot-reader.js'
import { StateDigest } from './state-digest.js'
import type { SnapshotReader, Store } from './store.js'
import type { Timestamp } from './timestamp.js'

type SnapshotEffect = Extract<Effect, { t: 'export-snapshot' | 'read-snapshot' | 'close-snapshot' | 'stage-snapshot' | 'import-snapshot' | 'drop-snapshot' }>

/**
 * A Peer's store side of snapshot transfers: the readers of the exports it
 * streams (by export id) and the writer of the snapshot it stages (one at a
 * time; every staging operation runs after the one before it, so parts go
 * in order and a dropped staging is aborted before the next one opens).
 */
export class PeerSnapshots {
  private readonly readers = new Map<string, SnapshotReader>()
  private writer: { readonly id: string, readonly open: Promise<SnapshotWriter> } | undefined
  private tail: Promise<unknown> = Promise.resolve()

  constructor (private readonly store: Store) {}

  /** What the store holds below `at`, as StateDigest lanes of its values (read a part at a time). */
  static async scrub (store: Store, at: Timestamp, partBytes: number): Promise<[number, number]> {
    const reader = await openSnapshotReader(store, at)
    const state = new StateDigest()
    try {
      for (let done = false; !done;) {
        const part = await reader.read(partBytes)
        for (const [k, v] of part.entries) state.entry(k, v)
        done = part.done
      }
    } finally {
      await reader.close()
    }
    return state.lanes
  }

  /** Carries out a snapshot effect: the completion to feed back (none for a closed reader's read, or a close or drop). */
  async carryOut (e: SnapshotEffect): Promise<Input | undefined> {
    switch (e.t) {
      case 'export-snapshot': {
        const reader = await openSnapshotReader(this.store, e.at)
        this.readers.set(e.id, reader)
        return { t: 'snapshot-exported', id: e.id, to: e.to, at: reader.at }
      }
      case 'read-snapshot': {
        const reader = this.readers.get(e.id)
        if (reader === undefined) return undefined
        try {
          return { t: 'snapshot-read', id: e.id, part: await reader.read(e.maxBytes) }
        } catch (err) {
          // A reader closed meanwhile answers nothing (its export is gone); any other failure is the store's.
          if (this.readers.get(e.id) === reader) throw err
          return undefined
        }
      }
      case 'close-snapshot': {
        const reader = this.readers.get(e.id)
        this.readers.delete(e.id)
        await reader?.close()
        return undefined
      }
      case 'stage-snapshot':
        return { t: 'snapshot-staged', id: e.id, digest: await this.staging(e.id, e.at, async w => await w.write(e.items)) }
      case 'import-snapshot':
        await this.staging(e.id, undefined, async w => { await w.commit(e.meta) })
        if (this.writer?.id === e.id) this.writer = undefined
        return { t: 'snapshot-imported', cursor: e.cursor }
      case 'drop-snapshot':
        if (this.writer?.id === e.id) this.drop()
        return undefined
    }
  }

  /** Runs `use` on the writer staging `id` after every staging operation before it; the first use opens it at `at`, dropping any other. */
  private async staging<T> (id: string, at: Timestamp | undefined, use: (w: SnapshotWriter) => Promise<T>): Promise<T> {
    if (this.writer?.id !== id) {
      this.drop()
      if (at === undefined) throw new Error(`no snapshot ${id} is staged`)
      const store = this.store
      const open = this.tail.then(async () => await openSnapshotWriter(store, at))
      this.writer = { id, open }
      this.tail = open.catch(() => {})
    }
    const w = this.writer
    const done = this.tail.then(async () => await use(await w.open))
    this.tail = done.catch(() => {})
    return await done
  }

  private drop (): void {
    const w = this.writer
    this.writer = undefined
    if (w !== undefined) this.tail = this.tail.then(async () => { await (await w.open).abort() }).catch(() => {})
  }

  /** Closes every reader and drops the staging (the peer is closing). */
  async close (): Promise<void> {
    const readers = [...this.readers.values()]
    this.readers.clear()
    this.drop()
    await Promise.all([...readers.map(async r => { await r.close() }), this.tail])
  }
}
