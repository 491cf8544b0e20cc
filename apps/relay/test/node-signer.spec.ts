import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { nodeDecisionSigner } from '../src/node-signer.js'

// The relays' signer on OpenSSL key objects must give the same verdicts as libp2p's own Ed25519 path.
describe('nodeDecisionSigner', () => {
  it('signs what libp2p verifies and verifies what libp2p signs; refuses other keys, other bytes, bad ids', async () => {
    const a = await generateKeyPair('Ed25519')
    const b = await generateKeyPair('Ed25519')
    const idA = peerIdFromPrivateKey(a).toString()
    const idB = peerIdFromPrivateKey(b).toString()
    const signer = nodeDecisionSigner(a)
    const msg = new TextEncoder().encode('tideline/call/1 statement')
    const mine = signer.sign(msg) as Uint8Array
    expect(await a.publicKey.verify(msg, mine)).toBe(true)
    const theirs = await b.sign(msg)
    expect(signer.verify(idB, msg, theirs)).toBe(true)
    expect(signer.verify(idA, msg, theirs)).toBe(false)
    expect(signer.verify(idB, new TextEncoder().encode('another statement'), theirs)).toBe(false)
    expect(signer.verify('not-a-peer-id', msg, theirs)).toBe(false)
    expect(signer.verify(idB, msg, theirs.subarray(0, 63))).toBe(false)
  })
})

describe('Ed25519 edge cases (Taming the many EdDSAs)', () => {
  it('the strict rule on OpenSSL accepts exactly case 3 of the twelve, as every replica must', async () => {
    const { ED25519_EDGE_CASES, STRICT_VERDICTS } = await import('@tideline/core/ed25519-cases')
    const { publicKeyFromRaw } = await import('@libp2p/crypto/keys')
    const { peerIdFromPublicKey } = await import('@libp2p/peer-id')
    const { fromHex, strictSignature } = await import('@tideline/core')
    const signer = nodeDecisionSigner(await generateKeyPair('Ed25519'))
    const verdicts = ED25519_EDGE_CASES.map(c => {
      const id = peerIdFromPublicKey(publicKeyFromRaw(fromHex(c.publicKey))).toString()
      const sig = fromHex(c.signature)
      // What callerVerdicts does on a relay: the strict signature check, then the signer's check (strict key, OpenSSL).
      return strictSignature(sig) && signer.verify(id, fromHex(c.message), sig) === true
    })
    expect(verdicts).toEqual(STRICT_VERDICTS)
  })
})
