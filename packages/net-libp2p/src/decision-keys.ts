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
  const keys = new Map<string, PublicKey | undefined>()
  const keyOf = (peer: string): PublicKey | undefined => {
    if (!keys.has(peer)) {
      let key: PublicKey | undefined
      try {
        key = peerIdFromString(peer).publicKey
      } catch {
        key = undefined
      }
      if (key !== undefined && (key.type !== 'Ed25519' || !strictPoint(key.raw))) key = undefined
      if (keys.size >= 4096) keys.clear()
      keys.set(peer, key)
    }
    return keys.get(peer)
  }
  return {
    sign: statement => privateKey.sign(statement),
    verify: (peer, statement, sig) => keyOf(peer)?.verify(statement, sig) ?? false
  }
}
