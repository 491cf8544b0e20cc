import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decode, encode } from 'cborg'
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { batchStatement, thunkDigest, toHex, validateMessage, verifyBatches, type Batch, type DecisionSigner, type Input, type Message, type Timestamp } from '@tideline/core'
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

  it('sends a batch\'s signature and a projection\'s digests as bytes, and a signed batch still checks out after the trip', () => {
    const key = generateKeyPairSync('ed25519')
    const signer: DecisionSigner = { sign: st => new Uint8Array(sign(null, st, key.privateKey)), verify: (_peer, st, sig) => verify(null, st, key.publicKey, sig) }
    const thunks = Array.from({ length: 8 }, (_, i) => ({
      ts: `0000000f4240${'ab'.repeat(8)}${i.toString(16).padStart(8, '0')}` as Timestamp,
      epoch: 1, coordinator: 'v0', seq: 2, index: i, procedure: 'transfer', hash: 'h'.repeat(64), args: { from: `a${i}`, to: `a${i + 1}`, amount: 1, raw: Uint8Array.of(i) }, reads: [`acct/a${i}`], writes: [`acct/a${i}`], clientTxnId: `c-${i}`, firstAt: 1_700_000_000_000 + i
    }))
    const whole: Batch = { epoch: 1, coordinator: 'v0', seq: 2, thunks }
    const signed: Batch = { ...whole, sig: toHex(signer.sign(batchStatement('g', whole) as Uint8Array) as Uint8Array) }
    const part: Batch = { ...signed, projected: true, n: 8, thunks: thunks.filter(t => t.index % 3 === 0), digests: thunks.map(t => t.index % 3 === 0 ? '' : thunkDigest(t)) }
    const frame = encodeMessages([{ t: 'write', batches: [signed, part], wm: [] }])
    // The 64-byte signature goes as a CBOR byte string, not 128 hex characters.
    expect(frame.byteLength).toBeLessThan(encode([{ t: 'write', batches: [signed, part], wm: [] }]).byteLength - 2 * 64 - 5 * 32)
    const [m] = (decodeFrame(frame) as unknown[]).map(x => validateMessage(x)) as Array<Extract<Message, { t: 'write' }>>
    expect(m?.batches).toEqual([signed, part])
    const out = verifyBatches(signer, 'g', { t: 'verify-batches', from: 'x', batches: m?.batches ?? [] }) as Extract<Input, { t: 'batches-verified' }>
    expect(out.ok).toEqual([true, true])
  })

  it('refuses a frame over the size limit before decoding it', () => {
    expect(() => decodeFrame(new Uint8Array(MAX_FRAME_BYTES + 1))).toThrow(expect.objectContaining({ name: 'InvalidMessageError' }))
  })
})
