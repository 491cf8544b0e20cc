import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { validateMessage } from '../src/index.js'
import { arbMangled, arbMessage, thrown } from '../test-support/message-arbitraries.js'

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

  it('throws nothing but InvalidMessageError for arbitrary values', () => {
    fc.assert(fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withDate: true, withNullPrototype: true }), junk => {
      expect([undefined, 'InvalidMessageError']).toContain(thrown(() => validateMessage(junk)))
    }), { numRuns: 3000 })
  })
})
