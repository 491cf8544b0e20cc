import type { DatabaseStatus } from '@tideline/db'
import { describeFailure, loadGroup, openDemo, timedCall, type DemoDatabase } from './db.js'
import { startPanel } from './panel.js'
import { SEATS, SEATS_PARTITION } from './procedures.js'
import { el, must, showMessage, watchConnection } from './ui.js'

// "Last seats": every tab sees the same seat map; booking is one procedure
// that aborts with 'taken', so a seat is never sold twice, however many tabs
// click at the same moment.

const seatsEl = must<HTMLDivElement>('#seats')
const whoInput = must<HTMLInputElement>('#who')
const rushButton = must<HTMLButtonElement>('#rush')
const releaseButton = must<HTMLButtonElement>('#release')
const message = must<HTMLParagraphElement>('#message')
const tally = must<HTMLParagraphElement>('#tally')

const keys = Array.from({ length: SEATS }, (_, i) => `seat/${i}`)
let seats: Array<string | undefined> = Array.from({ length: SEATS }, () => undefined)
const pending = new Set<number>()
let db: DemoDatabase | undefined
const mine = { booked: 0, taken: 0 }

const defaultWho = `guest-${Math.floor(Math.random() * 900 + 100)}`
whoInput.value = sessionStorage.getItem('tideline-demo-who') ?? defaultWho
whoInput.addEventListener('change', () => { sessionStorage.setItem('tideline-demo-who', whoInput.value) })

function who (): string {
  return whoInput.value
}

function render (): void {
  const me = who().trim()
  seatsEl.replaceChildren(...seats.map((owner, i) => {
    const b = el('button', { type: 'button', class: 'seat', 'data-seat': String(i), 'aria-label': `seat ${i + 1}${owner === undefined ? ' (free)' : ` (${owner})`}` })
    b.append(el('strong', {}, String(i + 1)), el('small', {}, owner ?? 'free'))
    b.dataset.state = owner === undefined ? (pending.has(i) ? 'pending' : 'free') : owner === me ? 'mine' : 'taken'
    b.disabled = db === undefined || pending.has(i) || owner !== undefined
    b.addEventListener('click', () => { void book(i) })
    return b
  }))
  const free = seats.filter(s => s === undefined).length
  tally.textContent = `${free} of ${SEATS} seats free · this tab booked ${mine.booked}, lost ${mine.taken} race${mine.taken === 1 ? '' : 's'}`
}

async function book (seat: number): Promise<'committed' | 'taken' | 'error'> {
  if (db === undefined || pending.has(seat)) return 'error'
  pending.add(seat)
  render()
  try {
    const r = await timedCall(db, 'book', { seat, who: who() })
    if (r.status === 'committed') {
      mine.booked++
      showMessage(message, 'ok', `Seat ${seat + 1} is yours.`)
      return 'committed'
    }
    if (r.reason === 'taken') mine.taken++
    showMessage(message, 'error', `Seat ${seat + 1}: ${describeFailure(r)}`)
    return r.reason === 'taken' ? 'taken' : 'error'
  } catch (err) {
    showMessage(message, 'error', `Seat ${seat + 1}: ${describeFailure(err as Error)}`)
    return 'error'
  } finally {
    pending.delete(seat)
    render()
  }
}

/** Books random seats that look free, `n` attempts, a few at a time (what a rush of users does). */
async function rush (n: number, parallel = 4): Promise<Array<{ seat: number, status: string }>> {
  const out: Array<{ seat: number, status: string }> = []
  let left = n
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (left > 0) {
      left--
      const idle = seats.flatMap((_, i) => pending.has(i) ? [] : [i])
      const free = idle.filter(i => seats[i] === undefined)
      // Everything looks taken: try another seat anyway (the procedure decides, not this tab's view).
      const pick = free.length > 0 ? free : idle
      const seat = pick[Math.floor(Math.random() * pick.length)] ?? 0
      out.push({ seat, status: await book(seat) })
    }
  }))
  return out
}

rushButton.addEventListener('click', () => {
  const b = rushButton
  b.disabled = true
  void rush(10).finally(() => { b.disabled = false })
})

releaseButton.addEventListener('click', () => {
  const d = db
  if (d === undefined) return
  const b = releaseButton
  b.disabled = true
  void timedCall(d, 'releaseSeats', {}).then(r => {
    if (r.status === 'committed') showMessage(message, 'ok', `Released ${r.value.freed} seats.`)
    else showMessage(message, 'error', describeFailure(r))
  }, (err: unknown) => { showMessage(message, 'error', describeFailure(err as Error)) }).finally(() => { b.disabled = false })
})

const hook = {
  ready: false,
  seats (): Array<string | null> {
    return seats.map(s => s ?? null)
  },
  async rush (n: number, name: string) {
    whoInput.value = name
    return rush(n)
  },
  status (): DatabaseStatus | undefined {
    return db?.status()
  }
}
export type SeatsHook = typeof hook

// The page's test and console hook (hooks.ts gathers these types for the e2e tests).
declare global {
  interface Window {
    demoSeats: SeatsHook
  }
}

window.demoSeats = hook

async function main (): Promise<void> {
  render()
  const group = await loadGroup()
  const d = await openDemo(group, [SEATS_PARTITION])
  db = d
  watchConnection(d)
  startPanel(must('#panel'), d, group)
  d.subscribe(keys, values => {
    seats = keys.map(k => values[k] as string | undefined)
    render()
  })
  rushButton.disabled = false
  releaseButton.disabled = false
  hook.ready = true
}

main().catch((err: unknown) => {
  showMessage(message, 'error', `Could not open the database: ${describeFailure(err as Error)}`)
})
