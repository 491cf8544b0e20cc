import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import type { DecisionSigner } from '@tideline/core'

/**
 * Real Ed25519 keys for simulated peers, each derived from its id (so a run
 * is reproducible): a peer signs with its own key only, and checks anyone's.
 * A forger in the simulator has its own key and nobody else's.
 */

// The fixed DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

export class SimKeyring {
  private readonly keys = new Map<string, { readonly priv: KeyObject, readonly pub: KeyObject }>()

  private key (id: string): { readonly priv: KeyObject, readonly pub: KeyObject } {
    let k = this.keys.get(id)
    if (k === undefined) {
      const seed = createHash('sha256').update(`tideline-sim-key:${id}`).digest()
      const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' })
      k = { priv, pub: createPublicKey(priv) }
      this.keys.set(id, k)
    }
    return k
  }

  /** The signer of peer `id`: signs with its key, verifies with anyone's. */
  signer (id: string): DecisionSigner {
    return {
      sign: statement => new Uint8Array(sign(null, statement, this.key(id).priv)),
      verify: (peer, statement, sig) => sig.byteLength === 64 && verify(null, statement, this.key(peer).pub, sig)
    }
  }
}
