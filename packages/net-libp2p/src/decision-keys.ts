import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { strictPoint, type DecisionSigner } from '@tideline/core'

/**
 * A peer's DecisionSigner on libp2p keys: it signs with its own private key,
 * and checks another member's signature with the public key its Ed25519 peer
 * id embeds (decoded once per peer and kept). A key that is not a canonical
 * encoding, or is of small order, never verifies (caller.ts: every replica
 * must reach the same verdict). In Node this is OpenSSL's RFC 8032 check.
 */
export function libp2pDecisionSigner (privateKey: PrivateKey): DecisionSigner {
  const keyOf = perPeer(strictEd25519Key)
  return {
    sign: statement => privateKey.sign(statement),
    verify: (peer, statement, sig) => keyOf(peer)?.verify(statement, sig) ?? false
  }
}

/** The Ed25519 key peer id `peer` names, if it names one that passes the strict checks (`strictPoint`). */
export function strictEd25519Key (peer: string): PublicKey | undefined {
  let key: PublicKey | undefined
  try {
    key = peerIdFromString(peer).publicKey
  } catch {
    return undefined
  }
  return key?.type === 'Ed25519' && strictPoint(key.raw) ? key : undefined
}

/** `make(peer)`, made once per peer and kept (for the last 4,096 peers asked about). */
export function perPeer<T> (make: (peer: string) => T): (peer: string) => T {
  const made = new Map<string, T>()
  return peer => {
    if (made.has(peer)) return made.get(peer) as T
    if (made.size >= 4096) made.clear()
    const v = make(peer)
    made.set(peer, v)
    return v
  }
}
