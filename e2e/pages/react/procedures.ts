import { defineProcedures } from '@tideline/db'

/** A todo: one key per item under `todo/`, no index array. */
export interface Todo { readonly text: string, readonly by: string }

const key = (id: string): string => `todo/${id}`

// Shared by the page, its worker and the relay processes (`--procedures`).
export const procedures = defineProcedures({
  add: {
    keys: (a: { id: string, text: string, by: string }) => ({ reads: [key(a.id)], writes: [key(a.id)] }),
    run (tx, a) {
      if (tx.get(key(a.id)) !== undefined) return tx.abort('taken')
      tx.put(key(a.id), { text: a.text, by: a.by })
      return null
    }
  },
  /** Moves an item to another id (its place in the list): the source must exist and the target must not. */
  move: {
    keys: (a: { from: string, to: string }) => ({ reads: [key(a.from), key(a.to)], writes: [key(a.from), key(a.to)] }),
    run (tx, a) {
      const item = tx.get(key(a.from))
      if (item === undefined) return tx.abort('gone')
      if (tx.get(key(a.to)) !== undefined) return tx.abort('taken')
      tx.delete(key(a.from))
      tx.put(key(a.to), item)
      return null
    }
  },
  remove: {
    keys: (a: { id: string }) => ({ reads: [key(a.id)], writes: [key(a.id)] }),
    run (tx, a) {
      if (tx.get(key(a.id)) === undefined) return tx.abort('gone')
      tx.delete(key(a.id))
      return null
    }
  },
  /** How many items there are: a declared range read (no index to keep). */
  count: {
    keys: () => ({ reads: [], writes: [], ranges: [{ prefix: 'todo/' }] }),
    run: tx => tx.range({ prefix: 'todo/' }).length
  }
})
