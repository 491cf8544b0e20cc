import type { DemoDatabase } from './db.js'

/** A DOM element with attributes and text. */
export function el<K extends keyof HTMLElementTagNameMap> (tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  if (text !== undefined) e.textContent = text
  return e
}

let clearTimer: ReturnType<typeof setTimeout> | undefined

/** The page's one status line: what the last action did, or why it did not. */
export function showMessage (target: HTMLElement, kind: 'ok' | 'error', text: string): void {
  target.textContent = text
  target.dataset.kind = kind
  clearTimeout(clearTimer)
  // Successes fade, failures stay until the next action: a reason should be readable.
  if (kind === 'ok') clearTimer = setTimeout(() => { if (target.dataset.kind === 'ok') target.textContent = '' }, 4_000)
}

/** Keeps the header's connection badge current. */
export function watchConnection (db: DemoDatabase): void {
  const badge = document.querySelector<HTMLElement>('#conn')
  if (badge === null) return
  const tick = (): void => {
    const s = db.status()
    badge.textContent = s.failed !== undefined
      ? `failed: ${s.failed}`
      : s.network === 'online' ? `online · ${s.peersConnected}/${s.peersGiven} relays` : s.network === 'connecting' ? 'connecting…' : 'offline (working from this tab\'s replica)'
    badge.dataset.state = s.failed !== undefined ? 'failed' : s.network
  }
  tick()
  setInterval(tick, 500)
}

/** The page's element matching `selector`; the markup is part of the page, so a missing one is a bug. */
export function must<T extends HTMLElement> (selector: string): T {
  const e = document.querySelector<T>(selector)
  if (e === null) throw new Error(`page markup is missing ${selector}`)
  return e
}
