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
