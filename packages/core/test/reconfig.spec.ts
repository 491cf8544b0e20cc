import { describe, expect, it } from 'vitest'
import { MemoryStore, chooseValue, decisionStatement, makeTimestamp, peerTag, toHex, type EpochChange, type EpochReport, type Batch, type Tx, type TxnResult } from '../src/index.js'
import { TestGroup, type PeerOptions } from './harness.js'

const procedures = {
  inc: {
    keys: (a: { k: string }) => ({ reads: [a.k], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { const v = ((tx.get(a.k) as number | undefined) ?? 0) + 1; tx.put(a.k, v); return v }
  }
}

/** Steps of 5 ms: the failure detector suspects after 200 ms. */
const FAST: PeerOptions = { suspectMs: 200, proposeTimeoutMs: 50 }

let txn = 0
async function inc (g: TestGroup, via: string, k = 'x', maxSteps = 400): Promise<TxnResult> {
  const r = await g.run(g.peer(via).submit({ clientTxnId: `t${++txn}`, procedure: 'inc', hash: g.hash('inc'), args: { k } }, { timeoutMs: maxSteps * 5 }), maxSteps)
  if (!r.done) throw new Error(`inc via ${via} did not settle in ${maxSteps} steps`)
  if ('error' in r) throw r.error
  return r.value
}

describe('epoch change', () => {
  it('a dead voter is voted out and commits resume on the other two; back, it rejoins as an observer and is voted in again', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { ...FAST, candidate: true, admitVoter: id => id.startsWith('v') })
    expect((await inc(g, 'v0')).status).toBe('committed')
    g.crash('v2')
    // Without reconfiguration this would never commit (the watermark is a minimum over all voters).
    const r = await inc(g, 'v1', 'x', 400)
    expect(r).toMatchObject({ status: 'committed', value: 2 })
    expect(g.peer('v0').status()).toMatchObject({ epoch: 1, voters: ['v0', 'v1'] })
    await g.start('v2')
    await g.steps(300)
    for (const id of ['v0', 'v1', 'v2']) expect(g.peer(id).status().voters).toEqual(['v0', 'v1', 'v2'])
    expect((await inc(g, 'v2')).status).toBe('committed')
    await g.steps(60)
    const digests = ['v0', 'v1', 'v2'].map(id => g.peer(id).status().digest)
    expect(new Set(digests).size).toBe(1)
    expect(g.peer('v2').status().evaluated).toBe(3)
  })

  it('an observer submits through one home voter, and through the next one once its home dies', async () => {
    const g = await TestGroup.create(procedures, 3, 1, { ...FAST, admitVoter: id => id.startsWith('v') })
    const minted = (): number[] => ['v0', 'v1', 'v2'].map(id => g.peer(id).status().counters.minted ?? 0)
    for (let i = 0; i < 5; i++) expect((await inc(g, 'o0')).status).toBe('committed')
    const first = minted()
    // All five minted by one voter: the observer's home.
    expect(first.filter(m => m > 0)).toEqual([5])
    const home = first.indexOf(5)
    g.crash(`v${home}`)
    for (let i = 0; i < 3; i++) expect((await inc(g, 'o0', 'x', 800)).status).toBe('committed')
    // After the first retry every submission went to the voter after the dead home, none to the third.
    const next = (home + 1) % 3
    const after = minted()
    expect(after[next]).toBe(3)
    expect(after[3 - home - next]).toBe(0)
  })

  it('a voter that leaves hands over: the next epoch has the others, it keeps following as an observer', async () => {
    const g = await TestGroup.create(procedures, 3, 0, FAST)
    await inc(g, 'v0')
    const left = g.run(g.peer('v1').leave({ timeoutMs: 2_000 }), 400)
    // meanwhile calls keep committing
    expect((await inc(g, 'v0')).status).toBe('committed')
    expect(await left).toEqual({ done: true, value: undefined })
    expect(g.peer('v0').status().voters).toEqual(['v0', 'v2'])
    expect(g.peer('v1').role).toBe('observer')
    expect((await inc(g, 'v1')).status).toBe('committed')
    await g.steps(40)
    expect(g.peer('v1').status().digest).toBe(g.peer('v0').status().digest)
  })

  it('a tab voter hands over and asks back (setCandidate): out while hidden, voted in again when shown; asking back calls off a leave under way', async () => {
    // No candidates at first: a voter that left stays out until it asks again.
    const g = await TestGroup.create(procedures, 3, 0, { ...FAST, admitVoter: id => id.startsWith('v') })
    await inc(g, 'v0')
    const v2 = g.peer('v2')
    expect(await g.run(v2.leave({ timeoutMs: 2_000 }), 400)).toEqual({ done: true, value: undefined })
    expect((await inc(g, 'v0')).status).toBe('committed')
    await g.steps(200)
    // It left and did not ask: still out.
    expect(g.peer('v0').status().voters).toEqual(['v0', 'v1'])
    expect(v2.role).toBe('observer')
    v2.setCandidate(true)
    await g.steps(300)
    for (const id of ['v0', 'v1', 'v2']) expect(g.peer(id).status().voters).toEqual(['v0', 'v1', 'v2'])
    expect((await inc(g, 'v2')).status).toBe('committed')
    // A leave called off before it is done: the caller gets AbortError and the voter stays.
    const v1 = g.peer('v1')
    const leaving = v1.leave({ timeoutMs: 2_000 }).then(() => 'left', (e: Error) => e.name)
    v1.setCandidate(true)
    expect(await leaving).toBe('AbortError')
    await g.steps(200)
    expect(g.peer('v0').status().voters).toContain('v1')
    expect((await inc(g, 'v1')).status).toBe('committed')
    await g.steps(40)
    expect(new Set(['v0', 'v1', 'v2'].map(id => g.peer(id).status().digest)).size).toBe(1)
  })

  it('a voter that starts to leave and is frozen at once (a tab frozen, or closed): the others finish its hand-over without it, well inside the failure detector\'s bound', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { ...FAST, admitVoter: id => id.startsWith('v') })
    await inc(g, 'v0')
    await g.steps(20)
    void g.peer('v2').leave({ timeoutMs: 2_000 }).catch(() => {})
    // Frozen right after: what it sent in that turn (its entry, saying it is leaving) is all the others get from it.
    g.crash('v2')
    let ms = 0
    while (g.peer('v0').status().voters.length !== 2 && ms < 2_000) {
      await g.step(5)
      ms += 5
    }
    expect(g.peer('v0').status().voters).toEqual(['v0', 'v1'])
    // The failure detector alone would wait out suspectMs (200 ms here) before anyone proposed.
    expect(ms).toBeLessThan(100)
    expect((await inc(g, 'v1')).status).toBe('committed')
  })

  it('two tab voters hidden at once: the one left, leaving, hands over to the first that asks back, and both are voters again when shown', async () => {
    const g = await TestGroup.create(procedures, 2, 0, { ...FAST, admitVoter: id => id.startsWith('v') })
    await inc(g, 'v0')
    const [v0, v1] = [g.peer('v0'), g.peer('v1')]
    for (const p of [v0, v1]) p.setCandidate(false)
    const leaves = [v0, v1].map(p => p.leave({ timeoutMs: 5_000 }).then(() => 'left', (e: Error) => e.name))
    await g.steps(300)
    // One of them won: the other is the only voter, still leaving (it cannot leave itself with no one to take over).
    const voters = v0.status().voters
    expect(voters).toHaveLength(1)
    const [left, stayed] = voters[0] === 'v0' ? [v1, v0] : [v0, v1]
    expect(await leaves[left === v0 ? 0 : 1]).toBe('left')
    // Shown again, the one that left asks back: the one left hands over to it at once (it leaves itself out).
    left.setCandidate(true)
    await g.steps(300)
    expect(v0.status().voters).toEqual([left.id])
    expect(await leaves[left === v0 ? 1 : 0]).toBe('left')
    stayed.setCandidate(true)
    await g.steps(300)
    for (const p of [v0, v1]) expect([...p.status().voters].sort()).toEqual(['v0', 'v1'])
    expect((await inc(g, stayed.id)).status).toBe('committed')
  })

  it('two voters proposing at once agree on one value (same epoch, same voters, same digest everywhere)', async () => {
    const g = await TestGroup.create(procedures, 3, 0, FAST)
    await inc(g, 'v0')
    g.peer('v0').requestEpochChange()
    g.peer('v2').requestEpochChange()
    await g.steps(100)
    const st = ['v0', 'v1', 'v2'].map(id => g.peer(id).status())
    expect(new Set(st.map(s => s.epoch)).size).toBe(1)
    expect(st[0]?.epoch).toBeGreaterThanOrEqual(1)
    expect((await inc(g, 'v1')).status).toBe('committed')
    await g.steps(40)
    expect(new Set(['v0', 'v1', 'v2'].map(id => g.peer(id).status().digest)).size).toBe(1)
  })

  it('an isolated voter learns the new epoch when it is back, and a strict read it began meanwhile sees what committed there', async () => {
    const g = await TestGroup.create(procedures, 3, 0, FAST)
    // v2's clock is a second behind: cut off, its own promises lag the others' (the case where a stale read could pass).
    g.crash('v2')
    g.skew.set('v2', -1_000)
    await g.start('v2')
    await inc(g, 'v0')
    await g.steps(20)
    g.isolated.add('v2')
    expect(await inc(g, 'v0')).toMatchObject({ status: 'committed', value: 2 })
    expect(g.peer('v0').status().voters).toEqual(['v0', 'v1'])
    // v2 still believes it is a voter of epoch 0. A read timestamp it mints now lies below the increment that
    // already completed in epoch 1: the read must not be served at it.
    const read = g.peer('v2').read(['x'], { timeoutMs: 5_000 })
    await g.steps(40)
    expect(g.peer('v2').status().epoch).toBe(0)
    g.isolated.clear()
    const out = await g.run(read, 400)
    expect(out.done && 'value' in out ? out.value.values : out).toEqual({ x: 2 })
    expect(g.peer('v2').status()).toMatchObject({ epoch: g.peer('v0').status().epoch, role: 'observer' })
  })

  it('refuses reconfiguration messages from non-voters, and replays of decided epochs', async () => {
    const g = await TestGroup.create(procedures, 3, 0, FAST)
    const v0 = g.peer('v0')
    v0.receive('outsider', { t: 'rc-prepare', epoch: 0, ballot: { n: 99, by: 'outsider' } })
    expect(v0.status()).toMatchObject({ sealed: false })
    expect(v0.status().counters['rc-refused']).toBe(1)
    const forged: EpochChange = { epoch: 1, voters: ['outsider'], cuts: [], floor: makeTimestamp(1, peerTag('x'), 0), batches: [] }
    v0.receive('outsider', { t: 'rc-decided', value: forged })
    expect(v0.status().counters['rc-decided-refused']).toBe(1)
    expect(v0.status().epoch).toBe(0)
    // a real change, then its replay
    g.peer('v1').requestEpochChange()
    await g.steps(60)
    expect(v0.status().epoch).toBe(1)
    const replays = v0.status().counters['rc-decided-replay'] ?? 0
    v0.receive('v1', { t: 'rc-decided', value: { ...forged, voters: ['v1'] } })
    expect(v0.status()).toMatchObject({ epoch: 1, voters: ['v0', 'v1', 'v2'] })
    expect(v0.status().counters['rc-decided-replay']).toBe(replays + 1)
  })
})

describe('candidates', () => {
  it('a candidate asks to be voted in only once it keeps up: never while it lacks the history, from its first hello on', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { ...FAST, candidate: true, admitVoter: () => true })
    for (let i = 0; i < 3; i++) expect((await inc(g, 'v0')).status).toBe('committed')
    // History well over a second old by the time the newcomer comes.
    await g.steps(300)
    const asked: boolean[] = []
    let starve = true
    g.filter = (from, to, m) => {
      if (from === 'n0' && m.t === 'hello') asked.push(m.candidate === true)
      // While starved, the newcomer hears the voters (their watermark) but gets none of their batches.
      return !(starve && to === 'n0' && (m.t === 'write' || m.t === 'gap-rep' || m.t === 'snap-chunk'))
    }
    g.stores.set('n0', new MemoryStore({ journal: true }))
    await g.start('n0')
    await g.steps(300)
    expect(asked.length).toBeGreaterThan(3)
    expect(asked.filter(x => x)).toEqual([])
    expect(g.peer('v0').status().voters).toEqual(['v0', 'v1', 'v2'])
    starve = false
    await g.steps(300)
    expect(asked.some(x => x)).toBe(true)
    expect(g.peer('v0').status().voters).toContain('n0')
    expect(g.peer('n0').status()).toMatchObject({ role: 'voter', evaluated: 3, digest: g.peer('v0').status().digest })
  })
})

describe('signed decisions', () => {
  /**
   * Genesis voters v0–v2 and spares s0–s2 (candidates the group takes when a voter is voted out; it never
   * grows past three). o0 stops in epoch 0; then v0, v1, v2 die for good, one at a time, each replaced.
   */
  async function allVotersGone (keys: boolean): Promise<TestGroup> {
    const g = await TestGroup.create(procedures, 3, 1, { ...FAST, candidate: true, admitVoter: id => !id.startsWith('o'), maxVoters: 3, keys })
    for (const id of ['s0', 's1', 's2']) {
      g.stores.set(id, new MemoryStore({ journal: true }))
      await g.start(id)
    }
    expect((await inc(g, 'o0')).status).toBe('committed')
    await g.steps(40)
    expect(g.peer('o0').status()).toMatchObject({ epoch: 0, evaluated: 1 })
    g.crash('o0')
    for (const dead of ['v0', 'v1', 'v2']) {
      g.crash(dead)
      const alive = [...g.peers.keys()].find(id => id.startsWith('s') && !g.down.has(id)) as string
      expect((await inc(g, alive, 'x', 800)).status).toBe('committed')
      await g.steps(20)
      expect(g.peer(alive).status().voters).not.toContain(dead)
    }
    expect(g.peer('s0').status().voters.slice().sort()).toEqual(['s0', 's1', 's2'])
    await g.start('o0')
    await g.steps(400)
    return g
  }

  it('a replica every voter of whose epoch is gone for good follows the decisions others pass on, checked by their proofs', async () => {
    const g = await allVotersGone(true)
    const o0 = g.peer('o0').status()
    const s0 = g.peer('s0').status()
    expect(o0).toMatchObject({ epoch: s0.epoch, voters: s0.voters, evaluated: s0.evaluated, digest: s0.digest })
    expect(o0.evaluated).toBe(4)
    expect(o0.counters['rc-reach-out']).toBeGreaterThanOrEqual(1)
    // The decision that ended its epoch came from a peer that never voted in it.
    expect(o0.counters['rc-decided-relayed']).toBeGreaterThanOrEqual(1)
    expect((await inc(g, 'o0')).status).toBe('committed')
  })

  it('without keys (decisions unsigned) the same replica is stuck in its epoch', async () => {
    const g = await allVotersGone(false)
    expect(g.peer('o0').status()).toMatchObject({ epoch: 0, voters: ['v0', 'v1', 'v2'] })
    expect(g.peer('o0').status().evaluated).toBeLessThan(g.peer('s0').status().evaluated)
    expect(g.peer('s0').status().epoch).toBeGreaterThanOrEqual(3)
  })

  it('refuses a passed-on decision whose proof is forged, altered, or short of a majority', async () => {
    const g = await TestGroup.create(procedures, 3, 1, { ...FAST, keys: true })
    const o0 = g.peer('o0')
    const value: EpochChange = { epoch: 1, voters: ['o0'], cuts: [], floor: makeTimestamp(1, peerTag('x'), 0), batches: [] }
    const ballot = { n: 7, by: 'v0' }
    const statement = decisionStatement('test', 0, ballot, value)
    const signed = (id: string, s = statement): { voter: string, sig: string } => ({ voter: id, sig: toHex(g.signer(id).sign(s) as Uint8Array) })
    // Signed by an outsider's key under the voters' names.
    o0.receive('outsider', { t: 'rc-decided', value, proof: { ballot, sigs: [{ ...signed('outsider'), voter: 'v0' }, { ...signed('outsider'), voter: 'v1' }] } })
    await g.steps(2)
    expect(o0.status().counters['rc-decided-forged']).toBe(1)
    // Real signatures of another value.
    const other = decisionStatement('test', 0, ballot, { ...value, voters: ['v0'] })
    o0.receive('outsider', { t: 'rc-decided', value, proof: { ballot, sigs: [signed('v0', other), signed('v1', other)] } })
    await g.steps(2)
    expect(o0.status().counters['rc-decided-forged']).toBe(2)
    // One real signature: no majority, refused before any check.
    o0.receive('outsider', { t: 'rc-decided', value, proof: { ballot, sigs: [signed('v0')] } })
    // Another group's statement.
    o0.receive('outsider', { t: 'rc-decided', value, proof: { ballot, sigs: [signed('v0', decisionStatement('other', 0, ballot, value)), signed('v1', decisionStatement('other', 0, ballot, value))] } })
    await g.steps(2)
    expect(o0.status().counters).toMatchObject({ 'rc-decided-refused': 1, 'rc-decided-forged': 3 })
    expect(o0.status()).toMatchObject({ epoch: 0, voters: ['v0', 'v1', 'v2'] })
    // The same proof made right is taken from anyone.
    o0.receive('outsider', { t: 'rc-decided', value: { ...value, voters: ['v0'] }, proof: { ballot, sigs: [signed('v0', other), signed('v1', other)] } })
    await g.steps(2)
    expect(o0.status()).toMatchObject({ epoch: 1, voters: ['v0'] })
    expect(o0.status().counters['rc-decided-relayed']).toBe(1)
  })
})

describe('revocation', () => {
  it('an admin revokes an observer and a voter: each is cut off from the epoch change that holds it, and no one else may ask', async () => {
    // Heartbeats well inside suspectMs: the group idles between steps here, and must not vote anyone out for it.
    const g = await TestGroup.create(procedures, 3, 2, { ...FAST, idleHeartbeatMs: 50, mayRevoke: id => id === 'o1' })
    expect((await inc(g, 'o0')).status).toBe('committed')
    // o0 is no admin: refused, and nothing changes.
    g.peer('v0').receive('o0', { t: 'revoke', reqId: 'r0', targets: [{ kind: 'peer', id: 'o1' }] })
    await g.steps(40)
    expect(g.peer('v0').status()).toMatchObject({ epoch: 0, counters: { 'revoke-refused': 1 } })
    // A voter revokes o0 itself: the next epoch's configuration holds it, from that change's floor on.
    const r = await g.run(g.peer('v1').revoke([{ kind: 'peer', id: 'o0' }]), 400)
    expect(r).toMatchObject({ done: true, value: 1 })
    await g.steps(20)
    for (const id of ['v0', 'v1', 'v2', 'o1']) {
      const config = g.peer(id).config
      expect(config.epoch).toBe(1)
      expect(config.revoked).toEqual([{ kind: 'peer', id: 'o0', from: expect.any(String) }])
    }
    // o0's submissions are refused by its voter; o1's still commit.
    const refused = await g.run(g.peer('o0').submit({ clientTxnId: 'after', procedure: 'inc', hash: g.hash('inc'), args: { k: 'x' } }, { timeoutMs: 2_000 }), 400)
    expect(refused).toMatchObject({ done: true, error: { name: 'PermissionDeniedError' } })
    expect((await inc(g, 'o1')).status).toBe('committed')
    // The admin o1 asks v0 to revoke voter v2: v2 is left out of the next epoch, and o1 hears when it is installed.
    const answers: unknown[] = []
    g.filter = (from, to, m) => { if (m.t === 'revoke-rep' && to === 'o1') answers.push({ from, ...m }); return true }
    g.peer('v0').receive('o1', { t: 'revoke', reqId: 'r1', targets: [{ kind: 'peer', id: 'v2' }] })
    await g.steps(200)
    expect(g.peer('v0').status()).toMatchObject({ epoch: 2, voters: ['v0', 'v1'] })
    expect(g.peer('v0').config.revoked?.map(x => x.id)).toEqual(['o0', 'v2'])
    expect(answers).toEqual([{ from: 'v0', t: 'revoke-rep', reqId: 'r1', epoch: 2 }])
    expect((await inc(g, 'v1')).status).toBe('committed')
    await g.steps(40)
    expect(new Set(['v0', 'v1', 'o1'].map(id => g.peer(id).status().digest)).size).toBe(1)
    // An admin that is no voter revokes through its home voter: its own call resolves once the change is installed.
    const viaHome = await g.run(g.peer('o1').revoke([{ kind: 'invite', id: 'ab'.repeat(32) }]), 400)
    expect(viaHome).toMatchObject({ done: true, value: 3 })
    // A member that is no admin asking the same way is refused, by name.
    const notAdmin = await g.run(g.peer('o0').revoke([{ kind: 'peer', id: 'o1' }]), 400)
    expect(notAdmin).toMatchObject({ done: true, error: { name: 'PermissionDeniedError' } })
    // A restart keeps them (they are in the decisions it recovers).
    g.crash('v1')
    await g.start('v1')
    expect(g.peer('v1').config.revoked?.map(x => x.id)).toEqual(['o0', 'v2', 'ab'.repeat(32)])
    // So does a replica started from an exported snapshot (its epoch's decision travels with it).
    const fresh = new MemoryStore()
    await fresh.importSnapshot(await g.peer('v0').exportSnapshot())
    g.stores.set('o9', fresh)
    await g.start('o9')
    expect(g.peer('o9').config).toMatchObject({ epoch: 3, voters: ['v0', 'v1'], revoked: g.peer('v0').config.revoked })
  })

  it('refuses what no epoch change could install, requests with fields besides their targets, and proposals that drop or backdate a revocation', async () => {
    const g = await TestGroup.create(procedures, 2, 1, { ...FAST, idleHeartbeatMs: 50, mayRevoke: id => id === 'o0' })
    const answers: Array<Record<string, unknown>> = []
    g.filter = (_from, to, m) => { if (m.t === 'revoke-rep' && to === 'o0') answers.push({ ...m }); return true }
    // Every voter at once: refused by name, nothing proposed.
    g.peer('v0').receive('o0', { t: 'revoke', reqId: 'all', targets: [{ kind: 'peer', id: 'v0' }, { kind: 'peer', id: 'v1' }] })
    // A field besides kind and id would ride in every later decision: the request is refused as invalid.
    g.peer('v0').receive('o0', { t: 'revoke', reqId: 'junk', targets: [{ kind: 'peer', id: 'x', junk: 'y'.repeat(1000) }] })
    await g.steps(40)
    expect(answers).toEqual([
      { t: 'revoke-rep', reqId: 'all', error: { name: 'PermissionDeniedError', message: expect.stringContaining('every voter') } },
      { t: 'revoke-rep', reqId: 'junk', error: { name: 'InvalidMessageError', message: expect.stringContaining('exactly') } }
    ])
    expect(g.peer('v0').status()).toMatchObject({ epoch: 0 })
    expect(g.peer('v0').status().counters['rc-proposed'] ?? 0).toBe(0)
    // One revocation installed; then a proposal whose value drops it, and one that backdates a new one, are refused by the acceptors.
    expect(await g.run(g.peer('v0').revoke([{ kind: 'peer', id: 'o0' }]), 400)).toMatchObject({ done: true, value: 1 })
    await g.steps(20)
    const held = g.peer('v1').config.revoked ?? []
    expect(held).toHaveLength(1)
    const refusedBefore = g.peer('v1').status().counters['rc-refused'] ?? 0
    const floor = g.peer('v1').status().watermark
    g.peer('v1').receive('v0', { t: 'rc-prepare', epoch: 1, ballot: { n: 50, by: 'v0' } })
    g.peer('v1').receive('v0', { t: 'rc-accept', epoch: 1, ballot: { n: 50, by: 'v0' }, value: { epoch: 2, voters: ['v0', 'v1'], cuts: [], floor, batches: [] } })
    g.peer('v1').receive('v0', { t: 'rc-accept', epoch: 1, ballot: { n: 50, by: 'v0' }, value: { epoch: 2, voters: ['v0', 'v1'], cuts: [], floor, batches: [], revoked: [...held, { kind: 'peer', id: 'late', from: held[0]?.from ?? floor }] } })
    expect((g.peer('v1').status().counters['rc-refused'] ?? 0) - refusedBefore).toBe(2)
  })
})

describe('chooseValue', () => {
  const tag = peerTag('v0')
  /** Batch `seq` of v0 with one thunk at `ms`. */
  const batch = (seq: number, ms: number): Batch => ({ epoch: 0, coordinator: 'v0', seq, thunks: [{ ts: makeTimestamp(ms, tag, 0), epoch: 0, coordinator: 'v0', seq, index: 0, procedure: 'inc', hash: 'h', args: { k: 'x' }, reads: ['x'], writes: ['x'], clientTxnId: `c${seq}`, firstAt: ms }] })
  const report = (have: number, held: Batch[], topMs: number): EpochReport => ({ have: [{ coordinator: 'v0', seq: have }], held, top: makeTimestamp(topMs, peerTag('p'), 0) })

  it('keeps every batch a promiser holds, aborts the gaps, and floors above all of it', () => {
    const promises = new Map([
      ['v0', { report: report(2, [batch(2, 20), batch(4, 40)], 30) }],
      ['v1', { report: report(3, [batch(3, 35)], 25) }]
    ])
    const v = chooseValue(promises, ['v0', 'v1', 'v2'], 1, ['v0', 'v1'])
    expect(v.cuts.find(c => c.coordinator === 'v0')).toEqual({ coordinator: 'v0', end: 4, skip: [] })
    expect(v.cuts.find(c => c.coordinator === 'v2')).toEqual({ coordinator: 'v2', end: 0, skip: [] })
    expect(v.batches.map(b => b.seq)).toEqual([2, 3, 4])
    expect(v.floor).toBe(makeTimestamp(40, tag, 0))
    const gap = chooseValue(new Map([['v1', { report: report(1, [batch(3, 35)], 10) }]]), ['v0'], 1, ['v0'])
    expect(gap.cuts[0]).toEqual({ coordinator: 'v0', end: 3, skip: [2] })
  })

  it('proposes the value accepted under the highest ballot, unchanged', () => {
    const a: EpochChange = { epoch: 1, voters: ['v0'], cuts: [], floor: makeTimestamp(1, tag, 0), batches: [] }
    const b: EpochChange = { ...a, voters: ['v1'] }
    const promises = new Map([
      ['v0', { accepted: { ballot: { n: 2, by: 'v0' }, value: a }, report: report(0, [], 1) }],
      ['v1', { accepted: { ballot: { n: 3, by: 'v2' }, value: b }, report: report(9, [], 99) }]
    ])
    expect(chooseValue(promises, ['v0', 'v1', 'v2'], 1, ['v0', 'v1', 'v2'])).toBe(b)
  })
})

describe('every voter leaving at once', () => {
  it('ends with at least one voter; after a restart of all, the group is whole again and commits', async () => {
    const g = await TestGroup.create(procedures, 3, 0, { ...FAST, candidate: true, admitVoter: id => id.startsWith('v') })
    await inc(g, 'v0')
    const leaves = ['v0', 'v1', 'v2'].map(id => g.peer(id).leave({ timeoutMs: 1_000 }).then(() => 'left', (e: Error) => e.name))
    await g.steps(250)
    const outcomes = await Promise.all(leaves)
    expect(outcomes.filter(o => o === 'left').length).toBeLessThanOrEqual(2)
    for (const id of ['v0', 'v1', 'v2']) g.crash(id)
    for (const id of ['v0', 'v1', 'v2']) await g.start(id)
    await g.steps(400)
    for (const id of ['v0', 'v1', 'v2']) expect([...g.peer(id).status().voters].sort()).toEqual(['v0', 'v1', 'v2'])
    expect(await inc(g, 'v1')).toMatchObject({ status: 'committed', value: 2 })
  })
})
