import { z } from 'zod'
import { defineProcedures } from '@tideline/db'

// Shared by the pages, their worker and the relay processes (`--procedures`).
//
// Keys:
//   board/columns  [{ id, name, wip }]      (absent: the defaults below; wip 0 = no limit)
//   col/<id>       card ids, top to bottom  (absent: [])
//   card/<id>      { title, assignee, column, by? }   (by: the peer id of the tab that created it)
//   seat/<n>       who booked it            (absent: free)
//
// Procedure code is pinned by a hash of its source. The relays compute it from
// this file's functions under tsx; the page and its worker are bundled and
// minified by Vite, whose output reads differently, so the build runs
// `tidelineProcedures()` (`@tideline/db/vite`), which fingerprints each
// procedure's source before the minifier and writes it into the procedure. No
// hand-kept versions: change `keys` or `run` and the hash changes with it.

export type Column = { readonly id: string, readonly name: string, readonly wip: number }
/** `by`: who created the card (the group runs signed calls, so every replica knows the caller; absent on older cards). */
export type Card = { readonly title: string, readonly assignee: string, readonly column: string, readonly by?: string }

/** The board's columns until someone changes a WIP limit (the same list is inlined in the procedures). */
export const DEFAULT_COLUMNS: readonly Column[] = [
  { id: 'todo', name: 'To do', wip: 0 },
  { id: 'doing', name: 'Doing', wip: 3 },
  { id: 'review', name: 'Review', wip: 2 },
  { id: 'done', name: 'Done', wip: 0 }
]
export const COLUMN_IDS = DEFAULT_COLUMNS.map(c => c.id)
export const MAX_TITLE = 200
export const SEATS = 24

const title = z.string().trim().min(1, 'the title is empty').max(MAX_TITLE, `the title is longer than ${MAX_TITLE} characters`)
const assignee = z.string().trim().max(40, 'the assignee name is longer than 40 characters')
const cardId = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'a card id is 1-40 letters, digits, - or _')
const columnId = z.string().regex(/^[a-z]{1,20}$/, 'unknown column')

export const procedures = defineProcedures({
  /** A new card at the bottom of `column`; the client picks the id (one per form submission), so a retry cannot make two. */
  createCard: {
    args: z.object({ id: cardId, title, column: columnId, assignee: assignee.default('') }),
    keys: a => ({ reads: [`card/${a.id}`, `col/${a.column}`, 'board/columns'], writes: [`card/${a.id}`, `col/${a.column}`] }),
    run (tx, a) {
      const t = a.title.trim()
      if (t.length === 0) return tx.abort('the title is empty')
      if (t.length > 200) return tx.abort('the title is longer than 200 characters')
      if (tx.get(`card/${a.id}`) !== undefined) return tx.abort(`card ${a.id} exists`)
      const columns = (tx.get('board/columns') as Column[] | undefined) ?? [
        { id: 'todo', name: 'To do', wip: 0 }, { id: 'doing', name: 'Doing', wip: 3 }, { id: 'review', name: 'Review', wip: 2 }, { id: 'done', name: 'Done', wip: 0 }
      ]
      const col = columns.find(c => c.id === a.column)
      if (col === undefined) return tx.abort(`no column ${a.column}`)
      const ids = (tx.get(`col/${a.column}`) as string[] | undefined) ?? []
      if (col.wip > 0 && ids.length >= col.wip) return tx.abort(`${col.name} is at its WIP limit (${col.wip})`)
      // The creator is the verified caller: no tab can create a card in another's name.
      tx.put(`card/${a.id}`, { title: t, assignee: a.assignee.trim(), column: a.column, ...(tx.caller === undefined ? {} : { by: tx.caller.id }) })
      tx.put(`col/${a.column}`, [...ids, a.id])
      return { id: a.id }
    }
  },
  editCard: {
    args: z.object({ id: cardId, title }),
    keys: a => ({ reads: [`card/${a.id}`], writes: [`card/${a.id}`] }),
    run (tx, a) {
      const t = a.title.trim()
      if (t.length === 0) return tx.abort('the title is empty')
      if (t.length > 200) return tx.abort('the title is longer than 200 characters')
      const card = tx.get(`card/${a.id}`) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.id} was deleted`)
      tx.put(`card/${a.id}`, { ...card, title: t })
      return { id: a.id }
    }
  },
  assignCard: {
    args: z.object({ id: cardId, assignee }),
    keys: a => ({ reads: [`card/${a.id}`], writes: [`card/${a.id}`] }),
    run (tx, a) {
      const card = tx.get(`card/${a.id}`) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.id} was deleted`)
      tx.put(`card/${a.id}`, { ...card, assignee: a.assignee.trim() })
      return { id: a.id }
    }
  },
  /**
   * Moves a card from `from` to position `index` of `to`. The caller says where
   * it saw the card; if another tab moved it meanwhile the move aborts instead
   * of acting on a stale board. `to` never grows past its WIP limit.
   */
  moveCard: {
    args: z.object({ card: cardId, from: columnId, to: columnId, index: z.number().int().min(0).max(10_000) }),
    keys: a => ({ reads: [`card/${a.card}`, `col/${a.from}`, `col/${a.to}`, 'board/columns'], writes: [`card/${a.card}`, `col/${a.from}`, `col/${a.to}`] }),
    run (tx, a) {
      const card = tx.get(`card/${a.card}`) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.card} was deleted`)
      const source = (tx.get(`col/${a.from}`) as string[] | undefined) ?? []
      if (card.column !== a.from || !source.includes(a.card)) return tx.abort(`the card is no longer in ${a.from}`)
      const columns = (tx.get('board/columns') as Column[] | undefined) ?? [
        { id: 'todo', name: 'To do', wip: 0 }, { id: 'doing', name: 'Doing', wip: 3 }, { id: 'review', name: 'Review', wip: 2 }, { id: 'done', name: 'Done', wip: 0 }
      ]
      const col = columns.find(c => c.id === a.to)
      if (col === undefined) return tx.abort(`no column ${a.to}`)
      const rest = source.filter(id => id !== a.card)
      const target = a.from === a.to ? rest : ((tx.get(`col/${a.to}`) as string[] | undefined) ?? [])
      if (a.from !== a.to && col.wip > 0 && target.length >= col.wip) return tx.abort(`${col.name} is at its WIP limit (${col.wip})`)
      const placed = [...target.slice(0, a.index), a.card, ...target.slice(a.index)]
      if (a.from !== a.to) tx.put(`col/${a.from}`, rest)
      tx.put(`col/${a.to}`, placed)
      tx.put(`card/${a.card}`, { ...card, column: a.to })
      return { column: a.to, index: Math.min(a.index, target.length) }
    }
  },
  deleteCard: {
    args: z.object({ id: cardId, column: columnId }),
    keys: a => ({ reads: [`card/${a.id}`, `col/${a.column}`], writes: [`card/${a.id}`, `col/${a.column}`] }),
    run (tx, a) {
      const card = tx.get(`card/${a.id}`) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.id} was already deleted`)
      // The rule every replica enforces alike: only the tab that created a card may delete it.
      if (card.by !== undefined && card.by !== tx.caller?.id) return tx.abort('only the card\'s creator can delete it')
      if (card.column !== a.column) return tx.abort(`the card is no longer in ${a.column}`)
      const ids = (tx.get(`col/${a.column}`) as string[] | undefined) ?? []
      tx.put(`col/${a.column}`, ids.filter(id => id !== a.id))
      tx.delete(`card/${a.id}`)
      return { id: a.id }
    }
  },
  /** A new WIP limit (0 = none); refused while the column holds more cards than that. */
  setWip: {
    args: z.object({ column: columnId, wip: z.number().int().min(0).max(99) }),
    keys: a => ({ reads: ['board/columns', `col/${a.column}`], writes: ['board/columns'] }),
    run (tx, a) {
      const columns = (tx.get('board/columns') as Column[] | undefined) ?? [
        { id: 'todo', name: 'To do', wip: 0 }, { id: 'doing', name: 'Doing', wip: 3 }, { id: 'review', name: 'Review', wip: 2 }, { id: 'done', name: 'Done', wip: 0 }
      ]
      const col = columns.find(c => c.id === a.column)
      if (col === undefined) return tx.abort(`no column ${a.column}`)
      const n = ((tx.get(`col/${a.column}`) as string[] | undefined) ?? []).length
      if (a.wip > 0 && n > a.wip) return tx.abort(`${col.name} holds ${n} cards, more than ${a.wip}`)
      tx.put('board/columns', columns.map(c => c.id === a.column ? { ...c, wip: a.wip } : c))
      return { wip: a.wip }
    }
  },
  /** Books one seat; a seat someone already has aborts with 'taken'. */
  book: {
    args: z.object({ seat: z.number().int().min(0).max(SEATS - 1), who: z.string().trim().min(1, 'say who you are').max(40) }),
    keys: a => ({ reads: [`seat/${a.seat}`], writes: [`seat/${a.seat}`] }),
    run (tx, a) {
      if (a.seat < 0 || a.seat >= 24) return tx.abort('no such seat')
      if (tx.get(`seat/${a.seat}`) !== undefined) return tx.abort('taken')
      tx.put(`seat/${a.seat}`, a.who)
      return { seat: a.seat }
    }
  },
  /** Frees every seat (to run the demo again). */
  releaseSeats: {
    args: z.object({}),
    keys: () => {
      const keys = Array.from({ length: 24 }, (_x, i) => `seat/${i}`)
      return { reads: keys, writes: keys }
    },
    run (tx) {
      let freed = 0
      for (let i = 0; i < 24; i++) {
        if (tx.get(`seat/${i}`) !== undefined) freed++
        tx.delete(`seat/${i}`)
      }
      return { freed }
    }
  }
})
