import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decode, encode } from 'cborg'
import { validateMessage, type Message, type Timestamp } from '@tideline/core'
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

  it('sends a batch\'s epoch, coordinator and seq once, not with every thunk, and puts them back', () => {
    const coordinator = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
    const thunks = Array.from({ length: 50 }, (_, i) => ({
      ts: `0000000f4240${'ab'.repeat(8)}${i.toString(16).padStart(8, '0')}` as Timestamp,
      epoch: 3, coordinator, seq: 7, index: i, procedure: 'transfer', hash: 'h'.repeat(64), args: { from: `a${i}`, to: `a${i + 1}`, amount: 1 }, reads: [`acct/a${i}`, `acct/a${i + 1}`], writes: [`acct/a${i}`, `acct/a${i + 1}`], clientTxnId: `c-${i}`, firstAt: 1_700_000_000_000 + i
    }))
    const message: Message = { t: 'write', batches: [{ epoch: 3, coordinator, seq: 7, thunks }], wm: [] }
    const frame = encodeMessages([message])
    const raw = decode(frame) as Array<{ batches: Array<{ thunks: Array<Record<string, unknown>> }> }>
    expect(Object.keys(raw[0]?.batches[0]?.thunks[0] ?? {}).sort()).toEqual(['args', 'clientTxnId', 'firstAt', 'hash', 'procedure', 'reads', 'ts', 'writes'])
    expect(frame.length).toBeLessThan(0.8 * encode([message]).length)
    expect((decodeFrame(frame) as unknown[]).map(m => validateMessage(m))).toEqual([message])
  })

  it('refuses a frame over the size limit before decoding it', () => {
    expect(() => decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1))).toThrow(expect.objectContaining({ name: 'InvalidMessageError' }))
  })
})
