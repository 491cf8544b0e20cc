import { describe, expect, it } from 'vitest'
import { peerIdOf } from '../src/addresses.js'

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
