import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { TidelineLibp2p } from './node.js'

/**
 * The peer an address reaches: its last `/p2p/` component, and for a circuit
 * address (`…/p2p/<relay>/p2p-circuit/p2p/<target>`) the target, never the
 * relay. Undefined when the address names no such peer (none at all, or a
 * circuit address that ends at `/p2p-circuit`).
 */
export function peerIdOf (address: string | Multiaddr): string | undefined {
  const ma = typeof address === 'string' ? multiaddr(address) : address
  let id: string | undefined
  for (const c of ma.getComponents()) {
    if (c.name === 'p2p-circuit') id = undefined
    else if (c.name === 'p2p') id = c.value
  }
  return id
}

/** How often missing connections to the configured peers are redialled. */
export const RECONNECT_MS = 1_000

/**
 * Keeps `node` connected to `peers` (multiaddrs ending in /p2p/<id>): dials
 * each one not connected now, at once and every RECONNECT_MS (a failure is
 * retried on the next round). Returns what stops it.
 */
export function keepConnected (node: TidelineLibp2p, peers: readonly string[], self: string): () => void {
  const targets = peers.map(a => ({ ma: multiaddr(a), id: peerIdOf(a) })).filter(t => t.id !== undefined && t.id !== self)
  if (targets.length === 0) return () => {}
  const round = (): void => {
    if (node.status !== 'started') return
    for (const { ma, id } of targets) {
      if (node.getConnections().some(c => c.remotePeer.toString() === id)) continue
      node.dial(ma, { signal: AbortSignal.timeout(RECONNECT_MS * 2) }).catch(() => {})
    }
  }
  const timer = setInterval(round, RECONNECT_MS)
  round()
  return () => { clearInterval(timer) }
}

/**
 * Dials `peer` at `addrs` (the tree's parent it was pointed at, tree.ts in
 * core), unless already connected: only addresses that name `peer` itself,
 * at most 8, and each one that does not parse is skipped.
 */
export function dialAt (node: TidelineLibp2p, peer: string, addrs: readonly string[]): void {
  if (node.status !== 'started' || node.getConnections().some(c => c.remotePeer.toString() === peer)) return
  const mas: Multiaddr[] = []
  for (const a of addrs.slice(0, 8)) {
    try {
      const ma = multiaddr(a)
      if (peerIdOf(ma) === peer) mas.push(ma)
    } catch {
      // Not an address: skipped.
    }
  }
  if (mas.length > 0) node.dial(mas, { signal: AbortSignal.timeout(RECONNECT_MS * 5) }).catch(() => {})
}

/** How long a peer reached through the relays' circuits waits before it is dialled again; doubled after each failure, up to CIRCUIT_RETRY_MAX_MS. */
export const CIRCUIT_RETRY_MS = 3_000
export const CIRCUIT_RETRY_MAX_MS = 60_000

/**
 * Keeps `node` connected to the peers `targets()` names that have no address
 * of their own here (the voters of a group of tabs): each one not connected
 * directly is dialled at `<relay>/p2p-circuit/webrtc/p2p/<id>` through the
 * relays (WebRTC, signalled over the relay's circuit, then direct), at once,
 * then CIRCUIT_RETRY_MS after a failure, twice that after the next, and so on
 * up to CIRCUIT_RETRY_MAX_MS (a voter that is no tab, a relay voted in later,
 * is not reached this way: asked rarely). A relayed (limited) connection does
 * not count: the protocol needs the direct one. Returns what stops it.
 */
export function keepReachableThrough (node: TidelineLibp2p, relays: readonly string[], targets: () => readonly string[], self: string): () => void {
  const through = relays.filter(r => peerIdOf(r) !== undefined && !r.includes('/p2p-circuit'))
  if (through.length === 0) return () => {}
  /** Per target: when it may be dialled next, and the wait after the next failure. */
  const next = new Map<string, { at: number, waitMs: number }>()
  const round = (): void => {
    if (node.status !== 'started') return
    const now = Date.now()
    const wanted = new Set(targets())
    for (const id of next.keys()) if (!wanted.has(id)) next.delete(id)
    for (const id of wanted) {
      if (id === self) continue
      if (node.getConnections().some(c => c.remotePeer.toString() === id && c.limits === undefined)) {
        next.delete(id)
        continue
      }
      const t = next.get(id) ?? { at: -Infinity, waitMs: CIRCUIT_RETRY_MS }
      if (now < t.at) continue
      next.set(id, { at: now + t.waitMs, waitMs: Math.min(CIRCUIT_RETRY_MAX_MS, t.waitMs * 2) })
      node.dial(through.map(r => multiaddr(`${r}/p2p-circuit/webrtc/p2p/${id}`)), { signal: AbortSignal.timeout(CIRCUIT_RETRY_MS * 2) }).catch(() => {})
    }
  }
  const timer = setInterval(round, RECONNECT_MS)
  round()
  return () => { clearInterval(timer) }
}
