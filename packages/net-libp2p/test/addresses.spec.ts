import { describe, expect, it, vi } from 'vitest'
import { keepReachableThrough, peerIdOf } from '../src/addresses.js'

const A = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const B = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'

describe('peerIdOf', () => {
  it('reads the peer a plain address names', () => {
    expect(peerIdOf(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${A}`)).toBe(A)
  })

  it('reads the target of a circuit address, not the relay', () => {
    expect(peerIdOf(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${A}/p2p-circuit/webrtc/p2p/${B}`)).toBe(B)
    expect(peerIdOf(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${A}/p2p-circuit/p2p/${B}`)).toBe(B)
  })

  it('names no peer for an address without one, or a circuit address without a target', () => {
    expect(peerIdOf('/ip4/127.0.0.1/tcp/4001/ws')).toBeUndefined()
    expect(peerIdOf(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${A}/p2p-circuit`)).toBeUndefined()
  })
})

describe('keepReachableThrough', () => {
  const C = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'
  /** A node that records what it is asked to dial, with the connections given. */
  const recorder = (connections: Array<{ remotePeer: string, limits?: object }>): { node: never, dials: string[][] } => {
    const dials: string[][] = []
    const node = {
      status: 'started',
      getConnections: () => connections.map(c => ({ remotePeer: { toString: () => c.remotePeer }, limits: c.limits })),
      dial: async (mas: Array<{ toString(): string }>) => { dials.push(mas.map(String)); throw new Error('not in a test') }
    }
    return { node: node as never, dials }
  }

  it("dials each voter with no address through every relay's circuit over WebRTC; not itself, not one connected directly; a relayed connection does not count", () => {
    const relay = `/ip4/127.0.0.1/tcp/4001/ws/p2p/${A}`
    // B connected directly; C only over the relay's circuit (limited).
    const { node, dials } = recorder([{ remotePeer: A }, { remotePeer: B }, { remotePeer: C, limits: { bytes: 1 } }])
    const stop = keepReachableThrough(node, [relay, `${relay}/p2p-circuit/webrtc/p2p/${B}`], () => [A, B, C, 'self'], 'self')
    stop()
    // Only C: A and B are connected directly, 'self' is this peer; the circuit address in the list is no relay.
    expect(dials).toEqual([[`${relay}/p2p-circuit/webrtc/p2p/${C}`]])
  })

  it('does nothing without a relay', () => {
    const { node, dials } = recorder([])
    keepReachableThrough(node, [], () => [B], 'self')()
    expect(dials).toEqual([])
  })
})

describe('keepReachableThrough backs off', () => {
  it('dials a voter that stays unreachable at once, then 3 s, 6 s, 12 s … apart; once connected and lost again, at once', () => {
    vi.useFakeTimers()
    try {
      const relay = `/ip4/127.0.0.1/tcp/4001/ws/p2p/${A}`
      const connections: Array<{ remotePeer: { toString(): string } }> = []
      const dials: number[] = []
      const node = { status: 'started', getConnections: () => connections, dial: async () => { dials.push(Date.now()); throw new Error('unreachable') } }
      const start = Date.now()
      const stop = keepReachableThrough(node as never, [relay], () => [B], 'self')
      vi.advanceTimersByTime(20_000)
      expect(dials.map(t => t - start)).toEqual([0, 3_000, 9_000])
      connections.push({ remotePeer: { toString: () => B } })
      vi.advanceTimersByTime(5_000)
      connections.length = 0
      vi.advanceTimersByTime(1_000)
      expect(dials.map(t => t - start)).toEqual([0, 3_000, 9_000, 26_000])
      stop()
    } finally {
      vi.useRealTimers()
    }
  })
})
