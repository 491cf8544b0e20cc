import { describe, expect, it } from 'vitest'
import { makeTimestamp, peerTag, timestampMs, type Tx } from '../src/index.js'
import { ScriptGroup } from './interaction/driver.js'

// The entry hub (entry-hub.ts): in groups of four voters or more, a busy voter
// sends its watermark entry to one voter, which relays the entries to all.

const procedures = {
  put: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null } }
}
const voters = ['v0', 'v1', 'v2', 'v3', 'v4']
const OPTIONS = { suspectMs: 2_000, suspectMinMs: 300, idleHeartbeatMs: 100, proposeTimeoutMs: 50, quiesceAfterMs: 0 }

let call = 0

/**
 * Runs the live voters `ms` forward, 10 ms at a time, with a call at one of
 * them (in turn) every 10 ms; counts the watermark messages on the wire
 * between each pair before delivering them.
 */
function busy (g: ScriptGroup, ms: number, live: readonly string[]): { wm: (from: string, to: string) => number, wmr: number } {
  const wm = new Map<string, number>()
  let wmr = 0
  for (let t = 0; t < ms; t += 10) {
    g.now += 10
    call++
    const at = live[call % live.length] as string
    g.input(at, { t: 'submit', call, req: { clientTxnId: `c${call}`, procedure: 'put', hash: g.hash('put'), args: { k: `k${call % 7}`, v: call } } })
    for (const p of live) g.input(p, { t: 'tick' })
    g.settle()
    for (const from of live) {
      for (const to of live) if (from !== to) wm.set(`${from} ${to}`, (wm.get(`${from} ${to}`) ?? 0) + g.onWire({ from, to, t: 'wm' }))
    }
    wmr += g.onWire({ t: 'wmr' })
    g.deliver()
    g.settle()
  }
  return { wm: (from, to) => wm.get(`${from} ${to}`) ?? 0, wmr }
}

describe('entry hub', () => {
  it('busy voters send their entries to the hub, which relays them; every voter still hears each one itself every heartbeat, and all evaluate every call', () => {
    const g = new ScriptGroup(procedures, voters, [], OPTIONS)
    const r = busy(g, 1_000, voters)
    // v0 is the hub: its entry goes to every voter at every publication (every 20 ms), and it relays the others'.
    expect(r.wm('v0', 'v3')).toBeGreaterThanOrEqual(40)
    expect(r.wmr).toBeGreaterThan(100)
    // v2 publishes as often, but to v3 only every heartbeat (100 ms), and to the hub every time.
    expect(r.wm('v2', 'v0')).toBeGreaterThanOrEqual(40)
    expect(r.wm('v2', 'v3')).toBeGreaterThanOrEqual(8)
    expect(r.wm('v2', 'v3')).toBeLessThanOrEqual(12)
    g.rounds(3_000, voters)
    for (const v of voters) expect(g.state(v).evaluatedCount).toBe(g.state('v0').evaluatedCount)
    expect(g.state('v0').evaluatedCount).toBeGreaterThanOrEqual(100)
    expect(g.state('v0').counters['entries-relayed'] ?? 0).toBeGreaterThan(0)
    for (const v of voters.slice(1)) expect(g.state(v).counters['entries-relayed'] ?? 0).toBe(0)
  })

  it('with entryHub off (or fewer than four voters) every busy voter sends its entry to every voter', () => {
    const g = new ScriptGroup(procedures, voters, [], { ...OPTIONS, entryHub: false })
    const r = busy(g, 1_000, voters)
    expect(r.wm('v2', 'v3')).toBeGreaterThanOrEqual(40)
    expect(r.wmr).toBe(0)
    const three = new ScriptGroup(procedures, ['v0', 'v1', 'v2'], [], OPTIONS)
    const r3 = busy(three, 1_000, ['v0', 'v1', 'v2'])
    expect(r3.wm('v2', 'v1')).toBeGreaterThanOrEqual(40)
    expect(r3.wmr).toBe(0)
  })

  it('when the hub dies the others keep committing, suspect it, and the next voter relays', () => {
    const g = new ScriptGroup(procedures, voters, [], OPTIONS)
    busy(g, 300, voters)
    g.crash('v0')
    const live = voters.slice(1)
    const before = g.state('v1').evaluatedCount
    busy(g, 3_000, live)
    g.rounds(3_000, live)
    // Voted out, and the calls made meanwhile evaluated everywhere.
    for (const v of live) {
      expect(g.state(v).current.voters).not.toContain('v0')
      expect(g.state(v).evaluatedCount).toBe(g.state('v1').evaluatedCount)
    }
    expect(g.state('v1').evaluatedCount - before).toBeGreaterThanOrEqual(250)
    expect(g.state('v1').counters['entries-relayed'] ?? 0).toBeGreaterThan(0)
  })

  it('relayed entries are taken only from a voter of the epoch, and only for the other voters of it', () => {
    const g = new ScriptGroup(procedures, voters, [], OPTIONS)
    busy(g, 200, voters)
    g.rounds(300, voters)
    const s = g.state('v3')
    const epoch = s.current.epoch
    const mine = s.current.wm.get('v3')
    const far = makeTimestamp(timestampMs(s.current.wm.value) + 60_000, peerTag('v2'), 0)
    const counted = { ...s.counters }
    // From a peer that is not a voter: refused and counted, nothing merged.
    g.input('v3', { t: 'receive', from: 'stranger', message: { t: 'wmr', wm: [{ voter: 'v2', epoch, svw: far, count: 1 }] } })
    expect(Object.entries(s.counters).filter(([k, n]) => counted[k as keyof typeof counted] !== n)).toEqual([['wmr-refused', 1]])
    expect(s.current.wm.get('v2')?.svw).not.toBe(far)
    // From a voter: not the receiver's own entry, nor one of a peer outside the epoch.
    g.input('v3', { t: 'receive', from: 'v1', message: { t: 'wmr', wm: [{ voter: 'v3', epoch, svw: far, count: 99 }, { voter: 'stranger', epoch, svw: far, count: 1 }] } })
    expect(s.current.wm.get('v3')).toEqual(mine)
    expect(s.current.wm.get('stranger')).toBeUndefined()
  })
})
