import type { CallResult, DatabaseStatus } from '@tideline/db'
import { describeFailure, loadGroup, newId, openDemo, timedCall, type DemoDatabase } from './db.js'
import { startPanel } from './panel.js'
import { BOARD_IDS, BOARDS, boardKey, COLUMN_IDS, DEFAULT_COLUMNS, partitionOfBoard, type BoardId, type Card, type Column } from './procedures.js'
import { el, must, showMessage, watchConnection } from './ui.js'

// The kanban boards. Every change is a procedure call; a board on screen is
// whatever this tab's replica holds (subscriptions), so it shows the one
// order of events every tab agrees on. Each board is a partition of the
// group: the tab replicates only the boards it has open (`?boards=a,b`; the
// first board when none is named), and a card can move to any board, open
// here or not, in one transaction across both.

interface BoardState {
  columns: Column[]
  lists: Record<string, string[]>
  cards: Record<string, Card>
}

/** The boards this tab has open, from the address. */
function openBoardsFromUrl (): BoardId[] {
  const asked = (new URLSearchParams(location.search).get('boards') ?? '').split(',').filter((b): b is BoardId => (BOARD_IDS as readonly string[]).includes(b))
  const open = BOARD_IDS.filter(b => asked.includes(b))
  return open.length > 0 ? open : BOARD_IDS.slice(0, 1)
}

const openBoards = openBoardsFromUrl()
/** The first open board: where the hook's calls go unless told otherwise. */
const firstBoard: BoardId = openBoards[0] ?? 'product'
const emptyBoard = (): BoardState => ({ columns: [...DEFAULT_COLUMNS], lists: Object.fromEntries(COLUMN_IDS.map(c => [c, []])), cards: {} })
const boards = new Map<BoardId, BoardState>(openBoards.map(b => [b, emptyBoard()]))
const boardName = (b: BoardId): string => BOARDS.find(x => x.id === b)?.name ?? b
const stateOf = (b: BoardId): BoardState => boards.get(b) ?? emptyBoard()
/** Cards with a call in flight: their buttons are disabled until it settles. */
const busy = new Set<string>()
const boardsEl = must<HTMLDivElement>('#boards')
const pickerEl = must<HTMLElement>('#board-picker')
const form = must<HTMLFormElement>('#new-card')
const titleInput = must<HTMLInputElement>('#title')
const assigneeInput = must<HTMLInputElement>('#assignee')
const targetSelect = must<HTMLSelectElement>('#target-board')
const addButton = must<HTMLButtonElement>('#add')
const message = must<HTMLParagraphElement>('#message')

let db: DemoDatabase | undefined
let editing: string | undefined

type Outcome = CallResult<unknown>

/** Shows a call's outcome; returns whether it committed. */
function report (what: string, r: Outcome | Error): boolean {
  if (!(r instanceof Error) && r.status === 'committed') {
    showMessage(message, 'ok', what)
    return true
  }
  showMessage(message, 'error', `${what} failed: ${describeFailure(r)}`)
  return false
}

/** Runs one call for a card with its buttons disabled meanwhile. */
async function cardCall (id: string, what: string, f: (d: DemoDatabase) => Promise<Outcome>): Promise<boolean> {
  if (db === undefined || busy.has(id)) return false
  busy.add(id)
  render()
  try {
    return report(what, await f(db))
  } catch (err) {
    return report(what, err as Error)
  } finally {
    busy.delete(id)
    render()
  }
}

async function move (id: string, board: BoardId, from: string, to: string, index: number, toBoard: BoardId = board): Promise<boolean> {
  const target = boards.get(toBoard)
  const name = `${target?.columns.find(c => c.id === to)?.name ?? to}${toBoard === board ? '' : ` on ${boardName(toBoard)}`}`
  return cardCall(id, `moved to ${name}`, async d => timedCall(d, 'moveCard', { board, card: id, from, to, index, ...(toBoard === board ? {} : { toBoard }) }))
}

function renderCard (board: BoardId, id: string, col: Column, pos: number, colIndex: number): HTMLElement {
  const state = stateOf(board)
  const card = state.cards[id]
  const li = el('li', { class: 'card', draggable: 'true', 'data-card': id })
  li.classList.toggle('busy', busy.has(id))
  li.addEventListener('dragstart', e => { e.dataTransfer?.setData('text/plain', JSON.stringify({ id, board, from: col.id })) })
  if (card === undefined) {
    li.append(el('span', { class: 'title muted' }, '…'))
    return li
  }
  const disabled = busy.has(id)
  if (editing === id) {
    const f = el('form', { class: 'edit' })
    const t = el('input', { name: 'title', 'aria-label': 'new title' })
    t.value = card.title
    const a = el('input', { name: 'assignee', 'aria-label': 'assignee', placeholder: 'assignee' })
    a.value = card.assignee
    const save = el('button', { type: 'submit' }, 'Save')
    const cancel = el('button', { type: 'button' }, 'Cancel')
    save.disabled = disabled
    cancel.addEventListener('click', () => { editing = undefined; render() })
    f.addEventListener('submit', e => {
      e.preventDefault()
      void (async () => {
        const ok = await cardCall(id, 'saved', async d => {
          if (t.value !== card.title) {
            const r = await timedCall(d, 'editCard', { board, id, title: t.value })
            if (r.status !== 'committed' || a.value.trim() === card.assignee) return r
          }
          return await timedCall(d, 'assignCard', { board, id, assignee: a.value })
        })
        if (ok) { editing = undefined; render() }
      })()
    })
    f.append(t, a, save, cancel)
    li.append(f)
    return li
  }
  li.append(el('span', { class: 'title' }, card.title))
  if (card.assignee !== '') li.append(el('span', { class: 'assignee' }, `@${card.assignee}`))
  if (card.by !== undefined) li.append(el('span', { class: 'by', title: card.by }, card.by === db?.id ? 'by you' : `by …${card.by.slice(-6)}`))
  const tools = el('div', { class: 'tools' })
  const button = (label: string, title: string, on: () => void, enabled = true): void => {
    const b = el('button', { type: 'button', title, 'aria-label': `${title}: ${card.title}` }, label)
    b.disabled = disabled || !enabled
    b.addEventListener('click', on)
    tools.append(b)
  }
  const left = state.columns[colIndex - 1]
  const right = state.columns[colIndex + 1]
  button('←', 'move left', () => { if (left !== undefined) void move(id, board, col.id, left.id, (state.lists[left.id] ?? []).length) }, left !== undefined)
  button('↑', 'move up', () => { void move(id, board, col.id, col.id, pos - 1) }, pos > 0)
  button('→', 'move right', () => { if (right !== undefined) void move(id, board, col.id, right.id, (state.lists[right.id] ?? []).length) }, right !== undefined)
  button('✎', 'edit', () => { editing = id; render() })
  button('✕', 'delete', () => { void cardCall(id, 'deleted', async d => timedCall(d, 'deleteCard', { board, id, column: col.id })) })
  // To another board (open here or not): the bottom of its To do, one transaction across both boards.
  const away = el('select', { class: 'to-board', 'aria-label': `move to board: ${card.title}`, title: 'move to another board' })
  away.append(el('option', { value: '' }, '⇄'), ...BOARDS.filter(b => b.id !== board).map(b => el('option', { value: b.id }, b.name)))
  away.disabled = disabled
  away.addEventListener('change', () => {
    const to = BOARD_IDS.find(b => b === away.value)
    if (to !== undefined) void move(id, board, col.id, 'todo', 10_000, to)
  })
  tools.append(away)
  li.append(tools)
  return li
}

/** Each card's element and what it was drawn from: a redraw rebuilds only the cards that changed. */
const cardNodes = new Map<string, { readonly drawnFrom: string, readonly li: HTMLElement }>()

function cardNode (board: BoardId, id: string, col: Column, pos: number, colIndex: number): HTMLElement {
  const state = stateOf(board)
  // Everything renderCard reads (its buttons' handlers read the lists when clicked).
  const drawnFrom = JSON.stringify([state.cards[id] ?? null, col.id, pos, colIndex, busy.has(id), editing === id, state.columns.map(c => c.id), db?.id ?? ''])
  const at = `${board}/${id}`
  const held = cardNodes.get(at)
  if (held?.drawnFrom === drawnFrom) return held.li
  const li = renderCard(board, id, col, pos, colIndex)
  cardNodes.set(at, { drawnFrom, li })
  return li
}

/** Each column's section, kept across redraws: its header is rebuilt when it changes, its list updated in place. */
const columnNodes = new Map<string, { readonly section: HTMLElement, head: HTMLElement, headFrom: string, readonly list: HTMLElement }>()

function columnHead (board: BoardId, col: Column, count: number): HTMLElement {
  const head = el('header')
  head.append(el('h2', {}, col.name), el('span', { class: 'count', 'data-count': col.id }, col.wip > 0 ? `${count} / ${col.wip}` : `${count}`))
  const wip = el('input', { type: 'number', min: '0', max: '99', class: 'wip', 'aria-label': `WIP limit of ${col.name}`, title: 'WIP limit (0 = none)' })
  wip.value = String(col.wip)
  wip.addEventListener('change', () => {
    void cardCall(`wip:${board}:${col.id}`, `${col.name} WIP limit set`, async d => timedCall(d, 'setWip', { board, column: col.id, wip: Number(wip.value) }))
  })
  head.append(wip)
  return head
}

function columnNode (board: BoardId, col: Column): { readonly section: HTMLElement, head: HTMLElement, headFrom: string, readonly list: HTMLElement } {
  const at = `${board}/${col.id}`
  const held = columnNodes.get(at)
  if (held !== undefined) return held
  const section = el('section', { class: 'column', 'data-column': col.id })
  const head = el('header')
  const list = el('ol', { class: 'cards' })
  section.addEventListener('dragover', e => { e.preventDefault() })
  section.addEventListener('drop', e => {
    e.preventDefault()
    const raw = e.dataTransfer?.getData('text/plain')
    if (raw === undefined || raw === '') return
    const { id, board: fromBoard, from } = JSON.parse(raw) as { id: string, board: BoardId, from: string }
    const ids = stateOf(board).lists[col.id] ?? []
    const over = (e.target as HTMLElement).closest<HTMLElement>('li.card')
    const index = over === null ? ids.length : Math.max(0, ids.indexOf(over.dataset.card ?? ''))
    void move(id, fromBoard, from, col.id, index, board)
  })
  section.append(head, list)
  const made = { section, head, headFrom: '', list }
  columnNodes.set(at, made)
  return made
}

/** Each open board's section: its title and its columns. */
const boardNodes = new Map<BoardId, { readonly section: HTMLElement, readonly columns: HTMLElement }>()

function boardNode (board: BoardId): { readonly section: HTMLElement, readonly columns: HTMLElement } {
  const held = boardNodes.get(board)
  if (held !== undefined) return held
  const section = el('section', { class: 'board-view', 'data-board': board, 'aria-label': `board ${boardName(board)}` })
  const columns = el('div', { class: 'board' })
  section.append(el('h2', { class: 'board-name' }, boardName(board)), columns)
  const made = { section, columns }
  boardNodes.set(board, made)
  return made
}

/**
 * Brings the boards up to date, touching only what changed: a column's
 * header when its name, limit or count changed, and in its list only the
 * cards that moved, appeared, changed or left (a full rebuild laid out the
 * whole board on every change, most of a click's time to the screen).
 */
function render (): void {
  // Keep focus and typing inside an open edit form: only redraw it when needed.
  const active = document.activeElement
  if (editing !== undefined && active instanceof HTMLInputElement && boardsEl.contains(active)) return
  const shown = new Set<string>()
  const views = openBoards.map(board => {
    const state = stateOf(board)
    const view = boardNode(board)
    const sections = state.columns.map((col, ci) => {
      const ids = state.lists[col.id] ?? []
      const node = columnNode(board, col)
      node.section.classList.toggle('full', col.wip > 0 && ids.length >= col.wip)
      const headFrom = JSON.stringify([col.name, col.wip, ids.length])
      if (node.headFrom !== headFrom) {
        const head = columnHead(board, col, ids.length)
        node.head.replaceWith(head)
        node.head = head
        node.headFrom = headFrom
      }
      const wanted = ids.map((id, i) => cardNode(board, id, col, i, ci))
      const children = node.list.children
      wanted.forEach((li, i) => { if (children[i] !== li) node.list.insertBefore(li, children[i] ?? null) })
      while (children.length > wanted.length) children[children.length - 1]?.remove()
      for (const id of ids) shown.add(`${board}/${id}`)
      return node.section
    })
    const root = view.columns
    if (sections.length !== root.children.length || sections.some((s, i) => root.children[i] !== s)) root.replaceChildren(...sections)
    return view.section
  })
  if (views.length !== boardsEl.children.length || views.some((v, i) => boardsEl.children[i] !== v)) boardsEl.replaceChildren(...views)
  for (const at of cardNodes.keys()) if (!shown.has(at)) cardNodes.delete(at)
}

/** The boards to open: one checkbox each; a change reopens the page's database with the boards' partitions. */
function renderPicker (): void {
  pickerEl.replaceChildren(el('span', {}, 'Boards:'), ...BOARDS.map(b => {
    const label = el('label')
    const box = el('input', { type: 'checkbox', 'data-open-board': b.id })
    box.checked = openBoards.includes(b.id)
    box.addEventListener('change', () => {
      const next = BOARD_IDS.filter(x => x === b.id ? box.checked : openBoards.includes(x))
      if (next.length === 0) { box.checked = true; return }
      location.search = `?boards=${next.join(',')}`
    })
    label.append(box, ` ${b.name}`)
    return label
  }))
  targetSelect.replaceChildren(...openBoards.map(b => el('option', { value: b }, boardName(b))))
  targetSelect.hidden = openBoards.length < 2
}

/** One form submission = one card id, reused if the call timed out and the same text is submitted again. */
let pendingCreate = false
let draft: { id: string, title: string } | undefined

async function createFromForm (): Promise<void> {
  if (db === undefined || pendingCreate) return
  const title = titleInput.value
  if (title.trim() === '') { showMessage(message, 'error', 'A card needs a title.'); return }
  pendingCreate = true
  addButton.disabled = true
  const id = draft !== undefined && draft.title === title ? draft.id : newId()
  const retry = draft?.id === id
  draft = { id, title }
  try {
    const board = BOARD_IDS.find(b => b === targetSelect.value) ?? firstBoard
    const r = await timedCall(db, 'createCard', { board, id, title, column: 'todo', assignee: assigneeInput.value })
    draft = undefined
    const ok = r.status === 'committed' || (retry && r.reason === `card ${id} exists`)
    if (ok) {
      showMessage(message, 'ok', 'Card added.')
      titleInput.value = ''
    } else {
      report('Adding the card', r)
    }
  } catch (err) {
    // A timeout leaves the outcome unknown: keep the id so that submitting again cannot add it twice.
    if ((err as Error).name !== 'QuorumUnavailableError') draft = undefined
    report('Adding the card', err as Error)
  } finally {
    pendingCreate = false
    addButton.disabled = false
  }
}

form.addEventListener('submit', e => {
  e.preventDefault()
  void createFromForm()
})

let renderQueued = false

/** One redraw for everything the subscriptions report in one turn (an optimistic call changes a list and a card at once). */
function renderSoon (): void {
  if (renderQueued) return
  renderQueued = true
  queueMicrotask(() => {
    renderQueued = false
    render()
  })
}

/** Each open board's columns and their card lists, and every card (one range subscription a board: no re-subscribing as lists change). */
function subscribeBoards (d: DemoDatabase): void {
  for (const board of openBoards) {
    const state = stateOf(board)
    d.subscribe([boardKey.columns(board), ...COLUMN_IDS.map(c => boardKey.col(board, c))], values => {
      state.columns = (values[boardKey.columns(board)] as Column[] | undefined) ?? [...DEFAULT_COLUMNS]
      state.lists = Object.fromEntries(state.columns.map(c => [c.id, (values[boardKey.col(board, c.id)] as string[] | undefined) ?? []]))
      renderSoon()
    })
    const prefix = boardKey.cards(board)
    d.subscribe({ prefix }, cards => {
      state.cards = Object.fromEntries(Object.entries(cards).map(([k, v]) => [k.slice(prefix.length), v as Card]))
      renderSoon()
    })
  }
}

/** Test and console hook: bulk actions the UI would need many clicks for. */
const hook = {
  ready: false,
  /**
   * Adds `count` cards through the form one after another (`pnpm bench
   * browser`), each timed from the click on "Add card": until the card is on
   * the board, until the next animation frame (on screen), and until "Card
   * added." (the final result).
   */
  async clickLatency (count: number, prefix: string): Promise<{ shown: number[], painted: number[], final: number[] }> {
    const out = { shown: [] as number[], painted: [] as number[], final: [] as number[] }
    for (let i = 0; i < count; i++) {
      const text = `${prefix} ${i}`
      while (addButton.disabled) await new Promise(resolve => { setTimeout(resolve, 1) })
      titleInput.value = text
      message.textContent = ''
      let painted: Promise<number> | undefined
      let final = 0
      const t0 = performance.now()
      const done = new Promise<void>(resolve => {
        const observer = new MutationObserver(() => {
          if (painted === undefined && [...boardsEl.querySelectorAll('li.card .title')].some(e => e.textContent === text)) {
            out.shown.push(performance.now() - t0)
            painted = new Promise(r => { requestAnimationFrame(() => { r(performance.now() - t0) }) })
          }
          if (final === 0 && message.textContent === 'Card added.') {
            final = performance.now() - t0
            observer.disconnect()
            resolve()
          }
        })
        observer.observe(document.body, { childList: true, subtree: true, characterData: true })
      })
      addButton.click()
      await done
      out.final.push(final)
      if (painted !== undefined) out.painted.push(await painted)
    }
    return out
  },
  /** The boards this tab has open (the partitions it replicates). */
  boards (): BoardId[] {
    return [...openBoards]
  },
  /** An open board as this tab's replica shows it (default: the first open board). */
  board (board: BoardId = firstBoard) {
    const state = stateOf(board)
    return { columns: state.columns, lists: state.lists, cards: state.cards }
  },
  async create (titles: string[], column = 'todo', board: BoardId = firstBoard) {
    const d = db
    if (d === undefined) throw new Error('not open')
    return Promise.all(titles.map(async title => {
      const r = await timedCall(d, 'createCard', { board, id: newId(), title, column, assignee: '' })
      return r.status === 'committed' ? { status: r.status, id: r.value.id } : { status: r.status, reason: r.reason }
    }))
  },
  /** Outcomes of calls started by `startCreate`, as they settle. */
  background: [] as Array<{ title: string, status: string, reason?: string }>,
  /** Starts creating cards on the first open board without waiting (for calls made while the network is in trouble). */
  startCreate (titles: string[]): void {
    const d = db
    if (d === undefined) throw new Error('not open')
    for (const title of titles) {
      timedCall(d, 'createCard', { board: firstBoard, id: newId(), title, column: 'todo', assignee: '' }).then(
        r => { hook.background.push(r.status === 'committed' ? { title, status: r.status } : { title, status: r.status, reason: r.reason }) },
        (err: unknown) => { hook.background.push({ title, status: 'error', reason: describeFailure(err as Error) }) })
    }
  },
  /** Deletes a card (as the delete button does); the outcome. */
  async remove (id: string, board: BoardId = firstBoard) {
    const d = db
    if (d === undefined) throw new Error('not open')
    const column = stateOf(board).cards[id]?.column ?? 'todo'
    const r = await timedCall(d, 'deleteCard', { board, id, column })
    return r.status === 'committed' ? { status: r.status } : { status: r.status, reason: r.reason }
  },
  /** This tab's peer id (who it is to the group). */
  id (): string | undefined {
    return db?.id
  },
  /**
   * Moves every card concurrently from column `from` of `o.board` to the top
   * of column `to` of `o.toBoard` (default: both the first open board); the
   * outcome of each call.
   */
  async moveAll (ids: string[], from: string, to: string, o: { board?: BoardId, toBoard?: BoardId } = {}) {
    const d = db
    if (d === undefined) throw new Error('not open')
    const board = o.board ?? firstBoard
    const toBoard = o.toBoard ?? board
    return Promise.all(ids.map(async card => {
      try {
        const r = await timedCall(d, 'moveCard', { board, card, from, to, index: 0, ...(toBoard === board ? {} : { toBoard }) })
        return r.status === 'committed' ? { card, status: 'committed' } : { card, status: 'aborted', reason: r.reason }
      } catch (err) {
        return { card, status: 'error', reason: describeFailure(err as Error) }
      }
    }))
  },
  status (): DatabaseStatus | undefined {
    return db?.status()
  }
}
export type BoardHook = typeof hook

// The page's test and console hook (hooks.ts gathers these types for the e2e tests).
declare global {
  interface Window {
    demo: BoardHook
  }
}

window.demo = hook

async function main (): Promise<void> {
  renderPicker()
  render()
  const group = await loadGroup()
  db = await openDemo(group, openBoards.map(partitionOfBoard))
  watchConnection(db)
  startPanel(must('#panel'), db, group)
  subscribeBoards(db)
  addButton.disabled = false
  hook.ready = true
}

main().catch((err: unknown) => {
  showMessage(message, 'error', `Could not open the database: ${describeFailure(err as Error)}`)
})
