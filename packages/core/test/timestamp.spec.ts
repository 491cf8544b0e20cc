import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TimestampMinter, makeTimestamp, parseTimestamp, peerTag, timestampFromBytes, timestampSuccessor, timestampToBytes, type Timestamp } from '../src/index.js'

const tag = fc.stringMatching(/^[0-9a-f]{16}$/)
const parts = fc.record({ ms: fc.integer({ min: 0, max: 2 ** 48 - 1 }), tag, event: fc.integer({ min: 0, max: 2 ** 32 - 1 }) })

function tupleCompare (a: { ms: number, tag: string, event: number }, b: { ms: number, tag: string, event: number }): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1
  if (a.tag !== b.tag) return a.tag < b.tag ? -1 : 1
  return a.event === b.event ? 0 : a.event < b.event ? -1 : 1
}

describe('timestamps', () => {
  it('string order equals (ms, tag, event) order, and parsing inverts encoding', () => {
    fc.assert(fc.property(parts, parts, (a, b) => {
      const ta = makeTimestamp(a.ms, a.tag, a.event)
      const tb = makeTimestamp(b.ms, b.tag, b.event)
      expect(parseTimestamp(ta)).toEqual(a)
      expect(Math.sign(ta < tb ? -1 : ta > tb ? 1 : 0)).toBe(tupleCompare(a, b))
    }))
  })

  it('the 18-byte form round-trips and sorts bytewise like the text form', () => {
    fc.assert(fc.property(parts, parts, (a, b) => {
      const ta = makeTimestamp(a.ms, a.tag, a.event)
      const tb = makeTimestamp(b.ms, b.tag, b.event)
      const ba = timestampToBytes(ta)
      const bb = timestampToBytes(tb)
      expect(ba.length).toBe(18)
      expect(timestampFromBytes(ba)).toBe(ta)
      expect(Math.sign(Buffer.compare(ba, bb))).toBe(tupleCompare(a, b))
    }))
  })

  it('a minter is strictly increasing whatever its clock does, and never goes below a floor', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 0, max: 20_000 }), (clock, floorMs) => {
      const m = new TimestampMinter(peerTag('p'))
      m.floorMs(floorMs)
      let last = '' as Timestamp
      for (const now of clock) {
        const ts = m.mint(now)
        expect(parseTimestamp(ts).ms).toBeGreaterThanOrEqual(floorMs)
        expect(ts > last).toBe(true)
        last = ts
      }
    }))
  })

  it('after floor(ts), every mint is above ts, whoever minted ts (same or other tag, any clock)', () => {
    fc.assert(fc.property(tag, fc.integer({ min: 0, max: 10_000 }), tag, fc.integer({ min: 0, max: 5 }), fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 20 }), (own, floorMsValue, other, event, clock) => {
      const m = new TimestampMinter(own)
      const floor = makeTimestamp(floorMsValue, other, event)
      m.floor(floor)
      for (const now of clock) expect(m.mint(now) > floor).toBe(true)
    }))
  })

  it('a successor is the least timestamp above', () => {
    fc.assert(fc.property(parts, (a) => {
      fc.pre(a.event < 2 ** 32 - 1)
      const t = makeTimestamp(a.ms, a.tag, a.event)
      const s = timestampSuccessor(t)
      expect(s > t).toBe(true)
      expect(parseTimestamp(s)).toEqual({ ...a, event: a.event + 1 })
    }))
  })

  it('refuses out-of-range parts with a named error', () => {
    expect(() => makeTimestamp(-1, '0'.repeat(16), 0)).toThrow(expect.objectContaining({ name: 'InvalidTimestampError' }))
    expect(() => makeTimestamp(1, 'abc', 0)).toThrow(expect.objectContaining({ name: 'InvalidTimestampError' }))
  })
})
