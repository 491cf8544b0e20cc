import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { validateMessage } from '../src/index.js'
import { arbMangled, arbMessage, arbProjected, thrown } from '../test-support/message-arbitraries.js'

describe('validateMessage', () => {
  it('takes every well-formed message as it is', () => {
    fc.assert(fc.property(arbMessage, m => {
      expect(validateMessage(structuredClone(m))).toEqual(m)
    }), { numRuns: 2000 })
  })

  it('throws nothing but InvalidMessageError for junk built from valid messages', () => {
    let refused = 0
    fc.assert(fc.property(arbMangled, junk => {
      const name = thrown(() => validateMessage(junk))
      if (name !== undefined) refused++
      expect([undefined, 'InvalidMessageError']).toContain(name)
    }), { numRuns: 5000 })
    // The mangling must mostly produce junk, or this test proves little.
    expect(refused).toBeGreaterThan(2500)
  })

  it('takes a projection only as one: indices ascending with gaps need `projected: true`, and a span runs forwards', () => {
    fc.assert(fc.property(arbProjected, b => {
      expect(validateMessage({ t: 'gap-rep', batches: [b] })).toBeDefined()
      const { projected: _, n: _n, digests: _d, ...whole } = b
      // Without the flag, indices that are not positions are refused.
      const gapped = b.thunks.some((t, i) => t.index !== i)
      expect(thrown(() => validateMessage({ t: 'gap-rep', batches: [whole] }))).toBe(gapped ? 'InvalidMessageError' : undefined)
      expect(thrown(() => validateMessage({ t: 'gap-rep', batches: [{ ...b, projected: false }] }))).toBe('InvalidMessageError')
      const backwards = [...b.thunks].reverse()
      expect(thrown(() => validateMessage({ t: 'gap-rep', batches: [{ ...b, thunks: backwards }] }))).toBe(b.thunks.length > 1 ? 'InvalidMessageError' : undefined)
    }), { numRuns: 300 })
    expect(thrown(() => validateMessage({ t: 'wm', wm: [], span: { epoch: 1, from: 5, to: 4 } }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'wm', wm: [], span: { coordinator: 'c', epoch: 1, from: 4, to: 5 } }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'gap-rep', batches: [], span: { epoch: 1, from: 4, to: 5 } }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'gap-req', coordinator: 'c', epoch: 1, from: 1, to: 2, h: [2, 1] }))).toBe('InvalidMessageError')
  })

  it('takes `quiet` only as true on a wm, and a declined snapshot only with its reason', () => {
    expect(validateMessage({ t: 'wm', wm: [], quiet: true })).toEqual({ t: 'wm', wm: [], quiet: true })
    expect(thrown(() => validateMessage({ t: 'wm', wm: [], quiet: false }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'wm', wm: [], quiet: 1 }))).toBe('InvalidMessageError')
    expect(validateMessage({ t: 'wm', wm: [], leaving: true })).toEqual({ t: 'wm', wm: [], leaving: true })
    expect(thrown(() => validateMessage({ t: 'wm', wm: [], leaving: false }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'ack', epoch: 0, seqs: [], wm: [], leaving: true }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'dur', durable: '0'.repeat(36), gc: '0'.repeat(36), quiet: true }))).toBe('InvalidMessageError')
    expect(validateMessage({ t: 'snap-no', id: 'x', why: 'healing' })).toBeDefined()
    expect(thrown(() => validateMessage({ t: 'snap-no', id: 'x' }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'snap-no', id: 'x', why: 'w'.repeat(65) }))).toBe('InvalidMessageError')
  })

  it('throws nothing but InvalidMessageError for arbitrary values', () => {
    fc.assert(fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withDate: true, withNullPrototype: true }), junk => {
      expect([undefined, 'InvalidMessageError']).toContain(thrown(() => validateMessage(junk)))
    }), { numRuns: 3000 })
  })
})
