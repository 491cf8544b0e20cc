import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import type { DecisionSigner } from '@tideline/core'
import { perPeer, strictEd25519Key } from '@tideline/net-libp2p'

/**
 * A DecisionSigner for Node peers (relays, Node clients) on OpenSSL key
 * objects made once: libp2p's own Ed25519 path builds a key object from JWK
 * on every signature and every check, which a group of signed calls pays on
 * every call, on every replica. The same verdicts as libp2p's in Node (it is
 * OpenSSL's RFC 8032 check either way), with the strict key check every
 * replica applies (`strictPoint`).
 */
export function nodeDecisionSigner (privateKey: PrivateKey): DecisionSigner {
  if (privateKey.type !== 'Ed25519') throw new TypeError('nodeDecisionSigner needs an Ed25519 key')
  const raw = privateKey.raw
  const own = createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(raw.subarray(0, 32)).toString('base64url'), x: Buffer.from(raw.subarray(32)).toString('base64url') } })
  const keyOf = perPeer((peer): KeyObject | undefined => {
    const pub = strictEd25519Key(peer)
    if (pub === undefined) return undefined
    try {
      return createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pub.raw).toString('base64url') } })
    } catch {
      // OpenSSL will not take it (not a point of the curve): it never verifies.
      return undefined
    }
  })
  return {
    sign: statement => new Uint8Array(sign(null, statement, own)),
    verify: (peer, statement, sig) => {
      const key = keyOf(peer)
      return key !== undefined && sig.byteLength === 64 && verify(null, statement, key, sig)
    }
  }
}
