import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipFastId } from '../src/gossip.js'

// gossipsub skips the signature check of a message whose fast id it has seen
// on a message that passed the check: the id must tell apart every two
// messages that are not the same signed content.
describe('gossipFastId', () => {
  it('is equal for copies of one signed message and differs between messages', async () => {
    const key = await generateKeyPair('Ed25519')
    const ids = new Set<string>()
    const sigs: Uint8Array[] = []
    for (let i = 0; i < 200; i++) {
      const sig = await key.sign(new TextEncoder().encode(`watermark ${i}`))
      sigs.push(sig)
      ids.add(gossipFastId({ signature: sig }))
    }
    expect(ids.size).toBe(200)
    // A copy (another buffer, same bytes) is a duplicate.
    const first = sigs[0] as Uint8Array
    expect(gossipFastId({ signature: Uint8Array.from(first) })).toBe(gossipFastId({ signature: first }))
    // One flipped bit in any byte, high bytes included, is another message.
    for (const at of [0, 31, 63]) {
      const flipped = Uint8Array.from(first)
      flipped[at] = (flipped[at] as number) ^ 0x80
      expect(gossipFastId({ signature: flipped })).not.toBe(gossipFastId({ signature: first }))
    }
  })

  it('never gives two unsigned messages the same id', () => {
    const a = gossipFastId({})
    const b = gossipFastId({ signature: new Uint8Array(0) })
    expect(a).not.toBe(b)
    expect(gossipFastId({})).not.toBe(a)
  })
})
