import { peerIdOf, type DatabaseStatus } from '@tideline/db'
import { samples, type DemoDatabase, type DemoGroup } from './db.js'
import { el } from './ui.js'

// The live protocol panel: db.status() every 250 ms and this tab's own call
// latencies, drawn on canvases. Everything here is read-only.

const POLL_MS = 250
const WINDOW_S = 60

interface Tick { readonly at: number, readonly wmLagMs: number, readonly frontierLagMs: number, readonly evaluated: number }
interface RelayHealth { readonly id: string, readonly ok: boolean, readonly evaluated?: number, readonly peers?: number }

const COLORS = { ok: '#2e9e6b', abort: '#d89614', error: '#d0453a', line: '#3867d6', line2: '#8e44ad', grid: '#d8dde6', text: '#33404f', muted: '#8a96a6', down: '#c9ced6' }

/** Milliseconds since the epoch in a timestamp (its first 12 hex digits). */
function tsMs (ts: string): number {
  return ts === '' ? 0 : Number.parseInt(ts.slice(0, 12), 16)
}

function canvas (parent: HTMLElement, label: string, height: number): CanvasRenderingContext2D {
  const box = el('figure', { class: 'chart' })
  const c = el('canvas', { 'aria-label': label, role: 'img' })
  c.height = height
  box.append(el('figcaption', {}, label), c)
  parent.append(box)
  const ctx = c.getContext('2d')
  if (ctx === null) throw new Error('no 2d canvas')
  return ctx
}

/** Sizes a canvas to its box at the device's pixel ratio; returns its CSS size. */
function fit (ctx: CanvasRenderingContext2D, height: number): { w: number, h: number } {
  const c = ctx.canvas
  const w = Math.max(200, c.parentElement?.clientWidth ?? 300)
  const r = window.devicePixelRatio > 0 ? window.devicePixelRatio : 1
  if (c.width !== Math.round(w * r)) {
    c.width = Math.round(w * r)
    c.height = Math.round(height * r)
    c.style.width = `${w}px`
    c.style.height = `${height}px`
  }
  ctx.setTransform(r, 0, 0, r, 0, 0)
  ctx.clearRect(0, 0, w, height)
  ctx.font = '11px system-ui, sans-serif'
  ctx.textBaseline = 'middle'
  return { w, h: height }
}

function short (id: string): string {
  return `…${id.slice(-6)}`
}

function drawPeers (ctx: CanvasRenderingContext2D, s: DatabaseStatus, group: DemoGroup, health: readonly RelayHealth[] | undefined): void {
  const { w, h } = fit(ctx, 150)
  const ids = group.peers.map(p => peerIdOf(p) ?? p)
  const n = ids.length
  const voters = ids.map((id, i) => ({ id, x: (w * (i + 1)) / (n + 1), y: 34 }))
  const me = { x: w * 0.3, y: h - 26 }
  // Voters talk to each other (the S-phase and the watermark).
  ctx.strokeStyle = COLORS.grid
  ctx.lineWidth = 1.5
  for (const a of voters) for (const b of voters) if (a.x < b.x) { ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.quadraticCurveTo((a.x + b.x) / 2, a.y - 22, b.x, b.y); ctx.stroke() }
  // This tab reaches `votersConnected` of them; the status does not say which,
  // so the links are solid only when it reaches all of them.
  ctx.setLineDash(s.votersConnected === s.voters ? [] : [4, 4])
  ctx.strokeStyle = s.votersConnected === 0 ? COLORS.error : COLORS.ok
  for (const v of voters) {
    if (health?.find(x => x.id === v.id)?.ok === false) continue
    ctx.beginPath(); ctx.moveTo(me.x, me.y - 12); ctx.lineTo(v.x, v.y + 40); ctx.stroke()
  }
  ctx.setLineDash([])
  ctx.lineWidth = 1
  ctx.textAlign = 'center'
  voters.forEach((v, i) => {
    const hv = health?.find(x => x.id === v.id)
    const up = hv === undefined ? undefined : hv.ok
    ctx.fillStyle = up === false ? COLORS.down : up === true ? COLORS.ok : COLORS.line
    ctx.beginPath(); ctx.arc(v.x, v.y, 12, 0, Math.PI * 2); ctx.fill()
    ctx.fillStyle = '#fff'
    ctx.fillText('V', v.x, v.y)
    ctx.fillStyle = COLORS.text
    ctx.fillText(`relay-${i}`, v.x, v.y + 20)
    const extra = up === false ? 'down' : hv?.evaluated === undefined ? `voter ${short(v.id)}` : `voter · ${hv.evaluated} tx`
    ctx.fillStyle = up === false ? COLORS.error : COLORS.muted
    ctx.fillText(extra, v.x, v.y + 32)
  })
  ctx.fillStyle = s.failed === undefined ? COLORS.line2 : COLORS.error
  ctx.beginPath(); ctx.arc(me.x, me.y, 12, 0, Math.PI * 2); ctx.fill()
  ctx.fillStyle = '#fff'
  ctx.fillText('O', me.x, me.y)
  ctx.fillStyle = COLORS.text
  ctx.textAlign = 'left'
  ctx.fillText(`this tab: ${s.role} ${short(s.id)}`, me.x + 18, me.y - 4)
  ctx.fillStyle = COLORS.muted
  ctx.fillText(`${s.votersConnected}/${s.voters} voters · ${s.connections} connections`, me.x + 18, me.y + 10)
}

function drawLine (ctx: CanvasRenderingContext2D, ticks: readonly Tick[], now: number): void {
  const { w, h } = fit(ctx, 120)
  const pad = { l: 50, r: 8, t: 24, b: 18 }
  const recent = ticks.filter(t => t.at > now - WINDOW_S * 1000)
  const max = Math.min(60_000, Math.max(100, ...recent.map(t => Math.max(t.wmLagMs, t.frontierLagMs))))
  const top = 10 ** Math.ceil(Math.log10(max))
  const scale = top / 2 >= max ? top / 2 : top
  const x = (at: number): number => pad.l + ((at - (now - WINDOW_S * 1000)) / (WINDOW_S * 1000)) * (w - pad.l - pad.r)
  const y = (v: number): number => pad.t + (1 - Math.min(v, scale) / scale) * (h - pad.t - pad.b)
  axes(ctx, w, pad, [0, scale / 2, scale].map(v => [y(v), fmtMs(v)]))
  const series = (pick: (t: Tick) => number, color: string): void => {
    ctx.strokeStyle = color
    ctx.lineWidth = 1.5
    ctx.beginPath()
    recent.forEach((t, i) => { if (i === 0) ctx.moveTo(x(t.at), y(pick(t))); else ctx.lineTo(x(t.at), y(pick(t))) })
    ctx.stroke()
  }
  series(t => t.wmLagMs, COLORS.line)
  series(t => t.frontierLagMs, COLORS.line2)
  legend(ctx, w - pad.r, 8, [['watermark lag', COLORS.line], ['evaluated lag', COLORS.line2]])
  ctx.fillStyle = COLORS.muted
  ctx.textAlign = 'left'
  ctx.fillText(`−${WINDOW_S} s`, pad.l, h - 7)
  ctx.textAlign = 'right'
  ctx.fillText('now', w - pad.r, h - 7)
}

function fmtMs (v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(v % 1000 === 0 ? 0 : 1)} s` : `${Math.round(v)} ms`
}

function axes (ctx: CanvasRenderingContext2D, w: number, pad: { l: number, r: number, t: number, b: number }, ticks: Array<[number, string]>): void {
  ctx.strokeStyle = COLORS.grid
  ctx.fillStyle = COLORS.muted
  ctx.textAlign = 'right'
  ctx.lineWidth = 1
  for (const [yy, label] of ticks) {
    ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(w - pad.r, yy); ctx.stroke()
    ctx.fillText(label, pad.l - 4, yy)
  }
}

function legend (ctx: CanvasRenderingContext2D, right: number, y: number, items: Array<[string, string]>): void {
  ctx.textAlign = 'right'
  let x = right
  for (const [label, color] of items.toReversed()) {
    ctx.fillStyle = COLORS.text
    ctx.fillText(label, x, y)
    x -= ctx.measureText(label).width + 4
    ctx.fillStyle = color
    ctx.fillRect(x - 8, y - 4, 8, 8)
    x -= 16
  }
}

/** Latency buckets: 2^k ms, from ≤ 4 ms to > 8 s. */
const BUCKETS = Array.from({ length: 12 }, (_, k) => 2 ** (k + 2))

function quantile (sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
}

function drawHistogram (ctx: CanvasRenderingContext2D): void {
  const { w, h } = fit(ctx, 130)
  const pad = { l: 30, r: 8, t: 30, b: 26 }
  const counts = BUCKETS.map(() => ({ committed: 0, aborted: 0, error: 0 }))
  for (const s of samples) {
    const i = BUCKETS.findIndex(b => s.ms <= b)
    const c = counts[i < 0 ? BUCKETS.length - 1 : i]
    if (c !== undefined) c[s.outcome]++
  }
  const max = Math.max(1, ...counts.map(c => c.committed + c.aborted + c.error))
  const bw = (w - pad.l - pad.r) / BUCKETS.length
  const y = (v: number): number => pad.t + (1 - v / max) * (h - pad.t - pad.b)
  axes(ctx, w, pad, [[y(0), '0'], [y(max), String(max)]])
  counts.forEach((c, i) => {
    let base = 0
    for (const [k, color] of [['committed', COLORS.ok], ['aborted', COLORS.abort], ['error', COLORS.error]] as const) {
      const v = c[k]
      if (v === 0) continue
      ctx.fillStyle = color
      ctx.fillRect(pad.l + i * bw + 1, y(base + v), bw - 2, y(base) - y(base + v))
      base += v
    }
  })
  ctx.fillStyle = COLORS.muted
  ctx.textAlign = 'center'
  BUCKETS.forEach((b, i) => { if (i % 2 === 1) ctx.fillText(b >= 1000 ? `${b / 1000}s` : `${b}`, pad.l + (i + 0.5) * bw, h - 16) })
  ctx.fillText('latency (ms, upper bound of each bucket)', (pad.l + w) / 2, h - 4)
  const sorted = samples.filter(s => s.outcome !== 'error').map(s => s.ms).toSorted((a, b) => a - b)
  ctx.textAlign = 'left'
  ctx.fillStyle = COLORS.text
  ctx.fillText(sorted.length === 0 ? 'no calls from this tab yet' : `${samples.length} calls · p50 ${fmtMs(quantile(sorted, 0.5))} · p95 ${fmtMs(quantile(sorted, 0.95))} · max ${fmtMs(sorted.at(-1) ?? 0)}`, pad.l, 6)
  legend(ctx, w - pad.r, 20, [['ok', COLORS.ok], ['aborted', COLORS.abort], ['error', COLORS.error]])
}

function drawThroughput (ctx: CanvasRenderingContext2D, ticks: readonly Tick[], now: number): void {
  const { w, h } = fit(ctx, 110)
  const pad = { l: 30, r: 8, t: 30, b: 14 }
  const sec = Math.floor(now / 1000)
  // Transactions the group evaluated (every replica evaluates all) and calls this tab made, per second.
  const group = Array.from({ length: WINDOW_S }, () => 0)
  const mine = Array.from({ length: WINDOW_S }, () => 0)
  for (let i = 1; i < ticks.length; i++) {
    const a = ticks[i - 1]
    const b = ticks[i]
    if (a === undefined || b === undefined) continue
    const slot = WINDOW_S - 1 - (sec - Math.floor(b.at / 1000))
    if (slot >= 0 && slot < WINDOW_S) group[slot] = (group[slot] ?? 0) + Math.max(0, b.evaluated - a.evaluated)
  }
  for (const s of samples) {
    const slot = WINDOW_S - 1 - (sec - Math.floor(s.at / 1000))
    if (slot >= 0 && slot < WINDOW_S) mine[slot] = (mine[slot] ?? 0) + 1
  }
  const max = Math.max(5, ...group, ...mine)
  const bw = (w - pad.l - pad.r) / WINDOW_S
  const y = (v: number): number => pad.t + (1 - v / max) * (h - pad.t - pad.b)
  axes(ctx, w, pad, [[y(0), '0'], [y(max), String(max)]])
  group.forEach((v, i) => {
    ctx.fillStyle = COLORS.line
    ctx.fillRect(pad.l + i * bw + 0.5, y(v), Math.max(1, bw - 1), y(0) - y(v))
  })
  ctx.strokeStyle = COLORS.abort
  ctx.lineWidth = 1.5
  ctx.beginPath()
  mine.forEach((v, i) => { const xx = pad.l + (i + 0.5) * bw; if (i === 0) ctx.moveTo(xx, y(v)); else ctx.lineTo(xx, y(v)) })
  ctx.stroke()
  const last = group.slice(-5).reduce((a, b) => a + b, 0) / 5
  ctx.fillStyle = COLORS.text
  ctx.textAlign = 'left'
  ctx.fillText(`${last.toFixed(1)} tx/s (last 5 s)`, pad.l, 6)
  legend(ctx, w - pad.r, 20, [['group tx/s', COLORS.line], ['this tab calls/s', COLORS.abort]])
}

/** Starts the panel in `root`: peers and roles, watermark and lag, latency histogram, throughput, plus the raw numbers. */
export function startPanel (root: HTMLElement | null, db: DemoDatabase, group: DemoGroup): void {
  if (root === null) return
  root.replaceChildren(el('h2', {}, 'Protocol'))
  const peers = canvas(root, 'peers and roles', 150)
  const lag = canvas(root, 'watermark and evaluation lag', 120)
  const hist = canvas(root, 'latency of this tab\'s calls', 130)
  const thr = canvas(root, 'throughput', 110)
  const facts = el('dl', { class: 'facts' })
  root.append(facts)
  const ticks: Tick[] = []
  let health: RelayHealth[] | undefined
  if (group.healthUrl !== undefined) {
    const url = group.healthUrl
    const poll = (): void => {
      fetch(url, { cache: 'no-store', signal: AbortSignal.timeout(2_000) })
        .then(async r => { health = await r.json() as RelayHealth[] }, () => { health = undefined })
        .finally(() => { setTimeout(poll, 1_000) })
    }
    poll()
  }
  const fact = (k: string, v: string, warn = false): HTMLElement[] => {
    const dd = el('dd', {}, v)
    if (warn) dd.className = 'warn'
    return [el('dt', {}, k), dd]
  }
  const tick = (): void => {
    const s = db.status()
    const now = Date.now()
    const wm = tsMs(s.watermark)
    const fr = tsMs(s.frontier)
    // Before the first evaluation there is no lag to speak of (the frontier is the zero timestamp).
    ticks.push({ at: now, wmLagMs: wm === 0 ? 0 : Math.max(0, now - wm), frontierLagMs: fr === 0 ? 0 : Math.max(0, now - fr), evaluated: s.evaluated })
    while (ticks.length > 0 && (ticks[0]?.at ?? now) < now - (WINDOW_S + 2) * 1000) ticks.shift()
    drawPeers(peers, s, group, health)
    drawLine(lag, ticks, now)
    drawHistogram(hist)
    drawThroughput(thr, ticks, now)
    facts.replaceChildren(
      ...fact('network', `${s.network} (${s.votersConnected}/${s.voters} voters)`, s.network !== 'online'),
      ...fact('group', `${s.groupId} · epoch ${s.epoch}`),
      ...fact('watermark V', s.watermark === '' ? '—' : `${s.watermark.slice(0, 12)}… (${wm === 0 ? '—' : fmtMs(Math.max(0, now - wm))} ago)`),
      ...fact('evaluated', `${s.evaluated} tx · frontier lag ${fr === 0 ? '—' : fmtMs(s.lagMs)}`),
      ...fact('in flight / waiting', `${s.inflight} / ${s.unevaluated}`),
      ...fact('digest', s.digest.slice(0, 16)),
      ...(s.holding === undefined ? [] : fact('partitions held', `${s.holding.join(', ')} · received ${s.counters['batches-received'] ?? 0} batches, ${s.counters['thunks-received'] ?? 0} tx`)),
      // The dissemination tree (issue 23): the peer this tab hangs under and the tabs under it, and how many batches came from
      // a tab rather than a relay. The demo's boards are partitions, and the tree is not for partitioned groups yet.
      ...fact('tree', s.tree.parent === undefined ? 'not in the tree (every relay sends this tab its batches)' : `under ${short(s.tree.parent)} · ${s.tree.children.length} below · ${s.counters['batches-from-members'] ?? 0} batches from tabs`),
      ...fact('tab slot', s.slot === undefined ? '—' : String(s.slot)),
      ...(s.diverged === undefined ? [] : fact('DIVERGED', `from ${short(s.diverged.peer)} at ${s.diverged.count}`, true)),
      ...(s.failed === undefined ? [] : fact('FAILED', s.failed, true))
    )
  }
  tick()
  setInterval(tick, POLL_MS)
}
