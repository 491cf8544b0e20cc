import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

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
