import { peerIdFromString } from '@libp2p/peer-id'
import { WorkerFailedError, strictPoint, type CallVerifier } from '@tideline/core'

/**
 * A tab's check of callers' signatures (a group of signed calls): the
 * strict checks every replica applies (`@tideline/core` caller.ts), then
 * WebCrypto's Ed25519, the platform's RFC 8032 verification as relays use
 * OpenSSL's. Without WebCrypto Ed25519 the tab cannot reach the group's
 * verdicts the same way, so it fails rather than fall back to another
 * implementation (a JavaScript one differs on crafted signatures). A key
 * WebCrypto will not import (not a point of the curve) never verifies.
 */
export function webCryptoCallVerifier (): CallVerifier {
  let supported: Promise<void> | undefined
  const keys = new Map<string, Promise<CryptoKey | undefined>>()
  const keyOf = async (peer: string): Promise<CryptoKey | undefined> => {
    supported ??= crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']).then(() => {}, (err: unknown) => {
      throw new WorkerFailedError(`this browser has no WebCrypto Ed25519, which a group of signed calls needs: ${(err as Error).message}`)
    })
    await supported
    let raw: Uint8Array | undefined
    try {
      const key = peerIdFromString(peer).publicKey
      raw = key?.type === 'Ed25519' ? key.raw : undefined
    } catch {
      raw = undefined
    }
    if (raw === undefined || !strictPoint(raw)) return undefined
    try {
      return await crypto.subtle.importKey('raw', Uint8Array.from(raw), { name: 'Ed25519' }, false, ['verify'])
    } catch {
      return undefined
    }
  }
  return async (peer, statement, sig) => {
    let key = keys.get(peer)
    if (key === undefined) {
      if (keys.size >= 4096) keys.clear()
      key = keyOf(peer)
      keys.set(peer, key)
    }
    const k = await key
    if (k === undefined) return false
    return await crypto.subtle.verify({ name: 'Ed25519' }, k, Uint8Array.from(sig), Uint8Array.from(statement))
  }
}
