import { z } from 'zod'
import { defineProcedures } from '@tideline/db'

// Shared by the pages, their worker and the relay processes (`--procedures`).
//
// Keys (each board is its own partition: its keys share the scope `board:<id>`):
//   board:<b>/columns    [{ id, name, wip }]      (absent: the defaults below; wip 0 = no limit)
//   board:<b>/col/<id>   card ids, top to bottom  (absent: [])
//   board:<b>/card/<id>  { title, assignee, column, by? }   (by: the peer id of the tab that created it)
//   seat/<n>             who booked it            (absent: free; every seat in one partition)
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

/** The boards, each its own partition (a tab replicates only the boards it has open). */
export const BOARDS = [
  { id: 'product', name: 'Product' },
  { id: 'design', name: 'Design' },
  { id: 'ops', name: 'Ops' }
] as const
export type BoardId = typeof BOARDS[number]['id']
export const BOARD_IDS: readonly BoardId[] = BOARDS.map(b => b.id)
/** Where the seats live: one partition of their own. */
export const SEATS_PARTITION = BOARDS.length

/**
 * The group's partition function (in its genesis): a key's scope is its first
 * segment (`board:product`, `seat`), and each scope is pinned to a partition.
 */
export const PARTITIONS = {
  count: BOARDS.length + 1,
  depth: 1,
  assign: { ...Object.fromEntries(BOARDS.map((b, i) => [`board:${b.id}`, i])), seat: BOARDS.length }
}

/** A board's partition. */
export function partitionOfBoard (board: BoardId): number {
  return BOARD_IDS.indexOf(board)
}

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

/** A board's keys. */
export const boardKey = {
  columns: (b: string): string => `board:${b}/columns`,
  col: (b: string, c: string): string => `board:${b}/col/${c}`,
  card: (b: string, id: string): string => `board:${b}/card/${id}`,
  cards: (b: string): string => `board:${b}/card/`
}

const title = z.string().trim().min(1, 'the title is empty').max(MAX_TITLE, `the title is longer than ${MAX_TITLE} characters`)
const assignee = z.string().trim().max(40, 'the assignee name is longer than 40 characters')
const cardId = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'a card id is 1-40 letters, digits, - or _')
const columnId = z.string().regex(/^[a-z]{1,20}$/, 'unknown column')
const boardId = z.enum(BOARD_IDS as [BoardId, ...BoardId[]], 'unknown board')

// A procedure's hash covers its own source only, so `keys` and `run` spell out their keys and defaults instead of using the helpers above.
export const procedures = defineProcedures({
  /** A new card at the bottom of `column`; the client picks the id (one per form submission), so a retry cannot make two. */
  createCard: {
    args: z.object({ board: boardId, id: cardId, title, column: columnId, assignee: assignee.default('') }),
    keys: a => ({ reads: [`board:${a.board}/card/${a.id}`, `board:${a.board}/col/${a.column}`, `board:${a.board}/columns`], writes: [`board:${a.board}/card/${a.id}`, `board:${a.board}/col/${a.column}`] }),
    run (tx, a) {
      const t = a.title.trim()
      if (t.length === 0) return tx.abort('the title is empty')
      if (t.length > 200) return tx.abort('the title is longer than 200 characters')
      const b = `board:${a.board}/`
      if (tx.get(`${b}card/${a.id}`) !== undefined) return tx.abort(`card ${a.id} exists`)
      const columns = (tx.get(`${b}columns`) as Column[] | undefined) ?? [
        { id: 'todo', name: 'To do', wip: 0 }, { id: 'doing', name: 'Doing', wip: 3 }, { id: 'review', name: 'Review', wip: 2 }, { id: 'done', name: 'Done', wip: 0 }
      ]
      const col = columns.find(c => c.id === a.column)
      if (col === undefined) return tx.abort(`no column ${a.column}`)
      const ids = (tx.get(`${b}col/${a.column}`) as string[] | undefined) ?? []
      if (col.wip > 0 && ids.length >= col.wip) return tx.abort(`${col.name} is at its WIP limit (${col.wip})`)
      // The creator is the verified caller: no tab can create a card in another's name.
      tx.put(`${b}card/${a.id}`, { title: t, assignee: a.assignee.trim(), column: a.column, ...(tx.caller === undefined ? {} : { by: tx.caller.id }) })
      tx.put(`${b}col/${a.column}`, [...ids, a.id])
      return { id: a.id }
    }
  },
  editCard: {
    args: z.object({ board: boardId, id: cardId, title }),
    keys: a => ({ reads: [`board:${a.board}/card/${a.id}`], writes: [`board:${a.board}/card/${a.id}`] }),
    run (tx, a) {
      const t = a.title.trim()
      if (t.length === 0) return tx.abort('the title is empty')
      if (t.length > 200) return tx.abort('the title is longer than 200 characters')
      const key = `board:${a.board}/card/${a.id}`
      const card = tx.get(key) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.id} was deleted`)
      tx.put(key, { ...card, title: t })
      return { id: a.id }
    }
  },
  assignCard: {
    args: z.object({ board: boardId, id: cardId, assignee }),
    keys: a => ({ reads: [`board:${a.board}/card/${a.id}`], writes: [`board:${a.board}/card/${a.id}`] }),
    run (tx, a) {
      const key = `board:${a.board}/card/${a.id}`
      const card = tx.get(key) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.id} was deleted`)
      tx.put(key, { ...card, assignee: a.assignee.trim() })
      return { id: a.id }
    }
  },
  /**
   * Moves a card from column `from` of `board` to position `index` of column
   * `to` of `toBoard` (default: the same board). The caller says where it saw
   * the card; if another tab moved it meanwhile the move aborts instead of
   * acting on a stale board. `to` never grows past its WIP limit. A move
   * between boards is one transaction across two partitions: each board's
   * replicas evaluate it with the other board's values forwarded to them.
   */
  moveCard: {
    args: z.object({ board: boardId, card: cardId, from: columnId, toBoard: boardId.optional(), to: columnId, index: z.number().int().min(0).max(10_000) }),
    keys: a => {
      const src = `board:${a.board}/`
      const dst = `board:${a.toBoard ?? a.board}/`
      const cards = src === dst ? [`${src}card/${a.card}`] : [`${src}card/${a.card}`, `${dst}card/${a.card}`]
      return { reads: [...cards, `${src}col/${a.from}`, `${dst}col/${a.to}`, `${dst}columns`], writes: [...cards, `${src}col/${a.from}`, `${dst}col/${a.to}`] }
    },
    run (tx, a) {
      const src = `board:${a.board}/`
      const dst = `board:${a.toBoard ?? a.board}/`
      const card = tx.get(`${src}card/${a.card}`) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.card} was deleted`)
      const source = (tx.get(`${src}col/${a.from}`) as string[] | undefined) ?? []
      if (card.column !== a.from || !source.includes(a.card)) return tx.abort(`the card is no longer in ${a.from}`)
      if (src !== dst && tx.get(`${dst}card/${a.card}`) !== undefined) return tx.abort(`card ${a.card} exists on the other board`)
      const columns = (tx.get(`${dst}columns`) as Column[] | undefined) ?? [
        { id: 'todo', name: 'To do', wip: 0 }, { id: 'doing', name: 'Doing', wip: 3 }, { id: 'review', name: 'Review', wip: 2 }, { id: 'done', name: 'Done', wip: 0 }
      ]
      const col = columns.find(c => c.id === a.to)
      if (col === undefined) return tx.abort(`no column ${a.to}`)
      const same = src === dst && a.from === a.to
      const rest = source.filter(id => id !== a.card)
      const target = same ? rest : ((tx.get(`${dst}col/${a.to}`) as string[] | undefined) ?? [])
      if (!same && col.wip > 0 && target.length >= col.wip) return tx.abort(`${col.name} is at its WIP limit (${col.wip})`)
      const placed = [...target.slice(0, a.index), a.card, ...target.slice(a.index)]
      if (!same) tx.put(`${src}col/${a.from}`, rest)
      tx.put(`${dst}col/${a.to}`, placed)
      if (src !== dst) tx.delete(`${src}card/${a.card}`)
      tx.put(`${dst}card/${a.card}`, { ...card, column: a.to })
      return { board: a.toBoard ?? a.board, column: a.to, index: Math.min(a.index, target.length) }
    }
  },
  deleteCard: {
    args: z.object({ board: boardId, id: cardId, column: columnId }),
    keys: a => ({ reads: [`board:${a.board}/card/${a.id}`, `board:${a.board}/col/${a.column}`], writes: [`board:${a.board}/card/${a.id}`, `board:${a.board}/col/${a.column}`] }),
    run (tx, a) {
      const b = `board:${a.board}/`
      const card = tx.get(`${b}card/${a.id}`) as Card | undefined
      if (card === undefined) return tx.abort(`card ${a.id} was already deleted`)
      // The rule every replica enforces alike: only the tab that created a card may delete it.
      if (card.by !== undefined && card.by !== tx.caller?.id) return tx.abort('only the card\'s creator can delete it')
      if (card.column !== a.column) return tx.abort(`the card is no longer in ${a.column}`)
      const ids = (tx.get(`${b}col/${a.column}`) as string[] | undefined) ?? []
      tx.put(`${b}col/${a.column}`, ids.filter(id => id !== a.id))
      tx.delete(`${b}card/${a.id}`)
      return { id: a.id }
    }
  },
  /** A new WIP limit (0 = none); refused while the column holds more cards than that. */
  setWip: {
    args: z.object({ board: boardId, column: columnId, wip: z.number().int().min(0).max(99) }),
    keys: a => ({ reads: [`board:${a.board}/columns`, `board:${a.board}/col/${a.column}`], writes: [`board:${a.board}/columns`] }),
    run (tx, a) {
      const b = `board:${a.board}/`
      const columns = (tx.get(`${b}columns`) as Column[] | undefined) ?? [
        { id: 'todo', name: 'To do', wip: 0 }, { id: 'doing', name: 'Doing', wip: 3 }, { id: 'review', name: 'Review', wip: 2 }, { id: 'done', name: 'Done', wip: 0 }
      ]
      const col = columns.find(c => c.id === a.column)
      if (col === undefined) return tx.abort(`no column ${a.column}`)
      const n = ((tx.get(`${b}col/${a.column}`) as string[] | undefined) ?? []).length
      if (a.wip > 0 && n > a.wip) return tx.abort(`${col.name} holds ${n} cards, more than ${a.wip}`)
      tx.put(`${b}columns`, columns.map(c => c.id === a.column ? { ...c, wip: a.wip } : c))
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
