import { describe, expect, it } from 'vitest'
import { nextDue, timestampMs, type Tx } from '../src/index.js'
import { peerStatus } from '../src/peer-status.js'
import { suspects } from '../src/protocol/reconfig/failure-detector.js'
import { ScriptGroup } from './interaction/driver.js'

const procedures = {
  put: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null } }
}
const voters = ['v0', 'v1', 'v2']
const OPTIONS = { suspectMs: 2_000, suspectMinMs: 300, idleHeartbeatMs: 100, proposeTimeoutMs: 50, quiesceAfterMs: 1_000 }

/** Steps the live peers `ms` forward, 10 ms at a time; returns how many messages they sent. */
function advance (g: ScriptGroup, ms: number, live: readonly string[] = voters): number {
  let sent = 0
  for (let t = 0; t < ms; t += 10) {
    g.now += 10
    for (const p of live) g.input(p, { t: 'tick' })
    g.settle()
    sent += g.count()
    g.deliver()
    g.settle()
  }
  return sent
}

let call = 0
function put (g: ScriptGroup, at: string, k: string, v: number): void {
  call++
  g.input(at, { t: 'submit', call, req: { clientTxnId: `c${call}`, procedure: 'put', hash: g.hash('put'), args: { k, v } } })
  g.settle()
}

const quiet = (g: ScriptGroup, v: string): boolean => peerStatus(g.state(v)).quiet

describe('quiescence', () => {
  it('an idle group goes quiet and then sends only its quiet entries, repeated every 20 s; a call wakes it, commits everywhere, and it goes quiet again', () => {
    // History collected 1 s behind, a GC step every 500 ms: housekeeping must not wake a quiet voter (a wake moves
    // the watermark, and with it the next GC step: the group would never stay quiet).
    const g = new ScriptGroup(procedures, voters, [], { ...OPTIONS, retainMs: 1_000, gcIntervalMs: 500 })
    put(g, 'v0', 'a', 1)
    advance(g, 300)
    expect(voters.every(v => g.state(v).evaluatedCount === 1)).toBe(true)
    // Heartbeats every 100 ms until each has idled 1 s; then quiet.
    expect(advance(g, 500)).toBeGreaterThan(20)
    advance(g, 1_500)
    for (const v of voters) expect(quiet(g, v)).toBe(true)
    // Quiet: no heartbeat; a durable-frontier report that changed (the last sync) goes out once to each voter, and
    // each voter repeats its quiet entry to the two others every 10 suspectMs (20 s): 6 messages per 20 s.
    expect(advance(g, 30_000)).toBeLessThanOrEqual(24)
    expect(advance(g, 40_000)).toBe(12)
    // Asleep, too: once its last GC steps ran (the retention window behind), a quiet voter's next timeout is its
    // quiet entry's repeat, not a tick every few ms.
    for (const v of voters) expect(nextDue(g.state(v)) - g.now).toBeGreaterThan(5_000)
    for (const v of voters) expect(g.state(v).counters['rc-proposed'] ?? 0).toBe(0)
    // A call at v1 wakes the group: every replica evaluates it, at the watermark of its timestamp.
    put(g, 'v1', 'b', 2)
    advance(g, 300)
    for (const v of voters) {
      expect(g.state(v).evaluatedCount).toBe(2)
      expect(quiet(g, v)).toBe(false)
    }
    advance(g, 2_000)
    for (const v of voters) expect(quiet(g, v)).toBe(true)
    expect(g.state('v0').current.voters).toEqual(voters)
  })

  it('a quiet voter that died is suspected once the group wakes and it does not answer, and the group goes on without it', () => {
    const g = new ScriptGroup(procedures, voters, [], OPTIONS)
    advance(g, 2_500)
    for (const v of voters) expect(quiet(g, v)).toBe(true)
    g.crash('v2')
    // Nobody needs v2 while the group is quiet: its silence is excused, for as long as it lasts.
    expect(advance(g, 5_000, ['v0', 'v1'])).toBe(0)
    expect(suspects(g.state('v0'), 'v2', g.now)).toBe(false)
    put(g, 'v0', 'a', 1)
    const woke = g.now
    while (g.state('v0').current.voters.includes('v2') && g.now - woke < 3_000) advance(g, 10, ['v0', 'v1'])
    // Suspected once it owed an answer for its silence bound (300 ms and its learned gap), not at suspectMs.
    expect(g.now - woke).toBeLessThan(1_500)
    expect(g.state('v0').current.voters).toEqual(['v0', 'v1'])
    advance(g, 500, ['v0', 'v1'])
    expect(g.state('v0').evaluatedCount).toBe(1)
    expect(g.state('v1').evaluatedCount).toBe(1)
  })

  it('a voter cut off while the others changed epoch, all quiet, hears of it from their quiet entries, and is voted back in', () => {
    // Relays' settings: a voted-out voter asks to be a voter again, and the others take it back.
    const g = new ScriptGroup(procedures, voters, [], { ...OPTIONS, candidate: true, admitVoter: () => true })
    advance(g, 2_500)
    for (const v of voters) expect(quiet(g, v)).toBe(true)
    // v2 is cut off; a call wakes v0 and v1, which vote v2 out (it does not answer) and go quiet again.
    put(g, 'v0', 'a', 1)
    for (let t = 0; t < 6_000; t += 10) {
      g.now += 10
      for (const p of voters) g.input(p, { t: 'tick' })
      g.settle()
      g.drop({ to: 'v2' })
      g.drop({ from: 'v2' })
      g.deliver()
      g.settle()
    }
    expect(g.state('v0').current.voters).toEqual(['v0', 'v1'])
    expect(g.state('v2').current.epoch).toBe(0)
    expect([quiet(g, 'v0'), quiet(g, 'v1'), quiet(g, 'v2')]).toEqual([true, true, true])
    // The link heals; nobody has anything to do. Within the quiet entries' repeat (20 s) v2 learns of the new epoch,
    // asks to be a voter again, and is voted back in.
    advance(g, 25_000)
    expect(g.state('v2').current.epoch).toBeGreaterThanOrEqual(2)
    expect(g.state('v0').current.voters).toEqual(voters)
    expect(g.state('v2').evaluatedCount).toBe(1)
  })

  it('an observer that says hello to a quiet group wakes every voter at once, not at its next timeout', () => {
    const g = new ScriptGroup(procedures, [...voters], ['o0'], OPTIONS)
    g.crash('o0')
    // The voters forget the silent observer (3 s), then go quiet.
    advance(g, 6_000)
    for (const v of voters) expect(quiet(g, v)).toBe(true)
    g.restart('o0')
    g.input('o0', { t: 'tick' })
    g.settle()
    g.deliver()
    g.settle()
    // The hello is no work, yet each voter asks to be ticked at once (its host arms its timer from nextDue)…
    for (const v of voters) expect(nextDue(g.state(v)) - g.now).toBeLessThanOrEqual(5)
    // …and that tick wakes it, and the observer hears every voter's entry.
    advance(g, 20)
    for (const v of voters) expect(quiet(g, v)).toBe(false)
    expect(g.now - timestampMs(g.state('o0').current.wm.value)).toBeLessThan(500)
  })

  it('quiet voters answer a voter that stays awake, so it never suspects them; one that stops answering is suspected', () => {
    const g = new ScriptGroup(procedures, voters, [], OPTIONS)
    // v0 never goes quiet (as if it always had an observer to serve): it heartbeats every 100 ms throughout.
    Object.assign(g.state('v0').options, { quiesceAfterMs: 0 })
    advance(g, 2_500)
    expect([quiet(g, 'v0'), quiet(g, 'v1'), quiet(g, 'v2')]).toEqual([false, true, true])
    const sent = advance(g, 10_000)
    // Its heartbeats and their answers: about 4 messages per 100 ms.
    expect(sent).toBeGreaterThan(300)
    expect(sent).toBeLessThan(500)
    for (const v of voters) expect(g.state(v).counters['rc-proposed'] ?? 0).toBe(0)
    expect(g.state('v0').current.voters).toEqual(voters)
    // v0's watermark follows the clock: the quiet voters' answers carry entries that move.
    expect(g.now - timestampMs(g.state('v0').current.wm.value)).toBeLessThan(500)
    g.crash('v2')
    const crashed = g.now
    while (g.state('v0').current.voters.includes('v2') && g.now - crashed < 3_000) advance(g, 10, ['v0', 'v1'])
    expect(g.now - crashed).toBeLessThan(1_000)
  })
})
