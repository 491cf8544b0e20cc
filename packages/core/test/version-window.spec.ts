import { describe, expect, it } from 'vitest'
import { TS_ZERO, VersionWindow, makeTimestamp, peerTag, timestampMs, type HeldVersion, type Timestamp } from '../src/index.js'

const tag = peerTag('v0')
const at = (ms: number): Timestamp => makeTimestamp(ms, tag, 0)
const v = (ms: number): HeldVersion<number> => ({ ts: at(ms), value: ms })

describe('VersionWindow', () => {
  it('answers a read below the newest from the versions it replaced, in any order of arrival', () => {
    const w = new VersionWindow<number>(10_000)
    // Newest on disk is 400; 100 and 300 were replaced in order, 200 arrived late (below the newest).
    w.replaced('k', v(100), at(300))
    w.replaced('k', v(300), at(400))
    w.replaced('k', v(200), at(300))
    expect(w.read('k', v(400), at(500))).toEqual(v(400))
    expect(w.read('k', v(400), at(400))).toEqual(v(300))
    expect(w.read('k', v(400), at(300))).toEqual(v(200))
    expect(w.read('k', v(400), at(150))).toEqual(v(100))
    expect(w.read('k', v(400), at(100))).toBeUndefined()
    expect(w.read('other', undefined, at(100))).toBeUndefined()
  })

  it('refuses, never misanswers, a read it cannot answer: below what it retained, after a trim, after a reset', () => {
    const w = new VersionWindow<number>(1_000, at(250))
    w.replaced('k', v(300), at(400))
    expect(w.read('k', v(400), at(350))).toEqual(v(300))
    // The version current at 200 was replaced before the window started: refused.
    expect(() => w.read('k', v(400), at(200))).toThrow(expect.objectContaining({ name: 'SnapshotTooOldError' }))
    // A key whose newest lies below the read needs no history at all.
    expect(w.read('j', v(100), at(200))).toEqual(v(100))
    w.replaced('k', v(400), at(2_000))
    w.trim(at(2_000)) // keeps what was replaced at or after 1 s
    expect(timestampMs(w.retainedFrom)).toBe(1_000)
    expect(w.size).toBe(1)
    expect(() => w.read('k', v(2_000), at(350))).toThrow(expect.objectContaining({ name: 'SnapshotTooOldError' }))
    expect(w.read('k', v(2_000), at(1_500))).toEqual(v(400))
    w.reset(TS_ZERO)
    expect(w.size).toBe(0)
    expect(w.read('k', v(2_000), at(1_500))).toBeUndefined()
  })
})
