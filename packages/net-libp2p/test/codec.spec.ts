import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { validateMessage } from '@tideline/core'
import { arbMessage, thrown } from '@tideline/core/message-arbitraries'
import { MAX_FRAME_BYTES, decodeFrame, encodeMessages } from '../src/codec.js'

describe('wire codec', () => {
  it('round-trips every well-formed frame of messages', () => {
    fc.assert(fc.property(fc.array(arbMessage, { minLength: 1, maxLength: 5 }), messages => {
      const decoded = decodeFrame(encodeMessages(messages))
      expect(Array.isArray(decoded)).toBe(true)
      expect((decoded as unknown[]).map(m => validateMessage(m))).toEqual(messages)
    }), { numRuns: 1000 })
  })

  it('throws nothing but InvalidMessageError for arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), bytes => {
      expect([undefined, 'InvalidMessageError']).toContain(thrown(() => decodeFrame(bytes)))
    }), { numRuns: 5000 })
  })

  it('throws nothing but InvalidMessageError for a valid frame with bytes flipped or cut', () => {
    fc.assert(fc.property(fc.array(arbMessage, { minLength: 1, maxLength: 3 }), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (messages, at, xor, cut) => {
      const frame = encodeMessages(messages)
      const i = at % frame.length
      const junk = cut ? frame.slice(0, i) : Uint8Array.from(frame, (b, j) => j === i ? b ^ xor : b)
      // Decoding, then validating each message, fails only with the named error (or succeeds).
      expect([undefined, 'InvalidMessageError']).toContain(thrown(() => {
        const decoded = decodeFrame(junk)
        if (Array.isArray(decoded)) for (const m of decoded) validateMessage(m)
      }))
    }), { numRuns: 3000 })
  })

  it('refuses a frame over the size limit before decoding it', () => {
    expect(() => decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1))).toThrow(expect.objectContaining({ name: 'InvalidMessageError' }))
  })
})
