import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { batchStatement, createRegistry, signedFields, thunkDigest, validateMessage, verifyBatches, type Batch, type DecisionSigner, type Input, type Message, type Thunk } from '../src/index.js'
import { projectBatch } from '../src/partition.js'
import { makeTimestamp } from '../src/timestamp.js'
import { fromHex, toHex } from '../src/value.js'
import { thrown } from '../test-support/message-arbitraries.js'
import { newPeerState } from '../src/protocol/state.js'
import { onBatchesVerified } from '../src/protocol/forwarded.js'
import { peerOptions } from '../src/peer-init.js'
import { TestGroup } from './harness.js'
import { accounts, call, move } from './moves.js'

// Signed batches (batch-signing.ts, docs/design/tabs.md): a coordinator signs
// each batch once; any member may pass it on; a receiver checks it against
// the coordinator's key, whole or projected, and refuses what was altered.

const keys = new Map(['v0', 'v1', 'x'].map(id => [id, generateKeyPairSync('ed25519')]))
const signer = (id: string): DecisionSigner => ({
  sign: statement => new Uint8Array(sign(null, statement, keys.get(id)?.privateKey as never)),
  verify: (peer, statement, sig) => keys.has(peer) && verify(null, statement, keys.get(peer)?.publicKey as never, sig)
})

const thunk = (index: number, k: string): Thunk => ({ ts: makeTimestamp(1_000_000, 'ab'.repeat(8), index), epoch: 0, coordinator: 'v0', seq: 3, index, procedure: 'move', hash: 'h', args: { from: k, to: k, n: index }, reads: [k], writes: [k], clientTxnId: `c${index}`, firstAt: 1 })
const spec = { count: 4, replicas: 3, depth: 2 }

function signedBatch (by = 'v0'): Batch {
  const b: Batch = { epoch: 0, coordinator: 'v0', seq: 3, thunks: accounts.slice(0, 6).map((a, i) => thunk(i, a)) }
  return { ...b, sig: toHex(signer(by).sign(batchStatement('g', b) as Uint8Array) as Uint8Array) }
}

function checked (batches: Batch[], group = 'g'): readonly boolean[] {
  const out = verifyBatches(signer('v1'), group, { t: 'verify-batches', from: 'x', batches }) as Extract<Input, { t: 'batches-verified' }>
  return out.ok
}

describe('signed batches', () => {
  it('a whole batch checks out against its coordinator; a changed thunk, signature, group or signer does not', () => {
    const b = signedBatch()
    expect(checked([b])).toEqual([true])
    const changed = { ...b, thunks: b.thunks.map((t, i) => i === 2 ? { ...t, args: { from: 'acct/0', to: 'acct/1', n: 99 } } : t) }
    const flipped = { ...b, sig: `${b.sig?.slice(0, 2) === 'ff' ? '00' : 'ff'}${b.sig?.slice(2) ?? ''}` }
    const reordered = { ...b, seq: 4, thunks: b.thunks.map(t => ({ ...t, seq: 4 })) }
    const { sig: _, ...unsigned } = b
    expect(checked([changed, flipped, reordered, unsigned, signedBatch('x')])).toEqual([false, false, false, false, false])
    expect(checked([b], 'another-group')).toEqual([false])
  })

  it('a projection carries the digests of the thunks it leaves out and checks out, as does a projection of it; one without them, or with a wrong one, does not', () => {
    const b = signedBatch()
    const p = projectBatch(b, new Set([0]), spec) as Batch
    expect(p.projected).toBe(true)
    expect(p.thunks.length).toBeLessThan(b.thunks.length)
    expect(p.digests?.filter(d => d !== '').length).toBe(b.thunks.length - p.thunks.length)
    expect(checked([p])).toEqual([true])
    const pp = projectBatch(projectBatch(b, new Set([0, 1]), spec) as Batch, new Set([0]), spec) as Batch
    expect(pp.thunks).toEqual(p.thunks)
    expect(checked([pp])).toEqual([true])
    const { digests: _, ...bare } = p
    const wrong = { ...p, digests: p.digests?.map(d => d === '' ? d : thunkDigest(thunk(9, 'acct/7'))) }
    expect(batchStatement('g', bare)).toBeUndefined()
    expect(checked([bare, wrong])).toEqual([false, false])
  })

  it('a forwarded copy keeps only what the signature covers', () => {
    const b = { ...projectBatch(signedBatch(), new Set([0]), spec) as Batch, set: 1 }
    const extra = { ...b, thunks: b.thunks.map(t => ({ ...t, note: 'unsigned' })) }
    const kept = signedFields(extra)
    expect(kept.set).toBeUndefined()
    expect(kept.thunks.every(t => !('note' in t))).toBe(true)
    expect(checked([kept])).toEqual([true])
    expect(fromHex(kept.sig as string).byteLength).toBe(64)
  })

  it('refuses what could not be checked cheaply or at all: a projection without its digests, a whole count past the message limit, optional fields present with no value', () => {
    const p = projectBatch(signedBatch(), new Set([0]), spec) as Batch
    const { digests: _, ...bare } = p
    expect(thrown(() => validateMessage({ t: 'write', batches: [p], wm: [] }))).toBeUndefined()
    expect(thrown(() => validateMessage({ t: 'write', batches: [bare], wm: [] }))).toBe('InvalidMessageError')
    expect(thrown(() => validateMessage({ t: 'write', batches: [{ ...p, n: 2 ** 40 }], wm: [] }))).toBe('InvalidMessageError')
    const t = thunk(0, 'acct/0')
    const withCaller = { ...t, caller: { id: 'c', sig: 'ab'.repeat(64), invite: undefined } }
    const withRange = { ...t, ranges: [{ start: 'acct/', end: undefined }] }
    for (const x of [withCaller, withRange]) {
      expect(thrown(() => validateMessage({ t: 'write', batches: [{ epoch: 0, coordinator: 'v0', seq: 3, thunks: [x] }], wm: [] }))).toBe('InvalidMessageError')
      // Built in memory anyway, such a thunk hashes as the same thunk without the empty field.
      expect(thunkDigest(x as Thunk)).toBe(thunkDigest({ ...t, ...('caller' in x ? { caller: { id: 'c', sig: 'ab'.repeat(64) } } : { ranges: [{ start: 'acct/' }] }) }))
    }
    // A check never throws, whatever the batch: it answers no.
    expect(checked([{ ...p, n: 2 ** 40, digests: undefined } as unknown as Batch])).toEqual([false])
  })

  it('strikes lapse a minute after the last one, and with the refusal they led to; a peer with no signer strikes no one', () => {
    const config = { groupId: 'g', epoch: 0, voters: ['v0', 'v1', 'v2'], registryHash: createRegistry({ move }).hash }
    const s = newPeerState({ id: 'o0', config, registry: createRegistry({ move }), options: peerOptions({}), now: 0 })
    const b = signedBatch()
    const strike = (now: number): void => { s.now = now; onBatchesVerified(s, 'x', [b], [false], false) }
    // The host is told to hang up on it once, when it is struck out.
    const hangUps = (): number => s.effects.filter(e => e.t === 'disconnect' && e.peer === 'x').length
    strike(0)
    strike(1_000)
    expect(s.shunned.get('x')?.until).toBe(-Infinity)
    expect(hangUps()).toBe(0)
    // Two strikes long ago count for nothing: this is the first again.
    strike(70_000)
    expect(s.shunned.get('x')?.strikes).toBe(1)
    strike(71_000)
    strike(72_000)
    expect(s.shunned.get('x')?.until).toBe(132_000)
    expect(hangUps()).toBe(1)
    // After the refusal, one more forgery is a first strike, not a refusal again.
    strike(200_000)
    expect(s.shunned.get('x')).toMatchObject({ strikes: 1, until: -Infinity })
    expect(hangUps()).toBe(1)
    // Without a signer nothing is taken and no one struck.
    s.now = 201_000
    onBatchesVerified(s, 'y', [b], [false], true)
    expect(s.shunned.has('y')).toBe(false)
    expect(s.counters['forwarded-unchecked']).toBe(1)
    const unchecked = verifyBatches(undefined, 'g', { t: 'verify-batches', from: 'y', batches: [b] }) as Extract<Input, { t: 'batches-verified' }>
    expect(unchecked.unchecked).toBe(true)
  })

  it('an observer takes a batch another member passes on once its signature checks out, refuses forged ones, and stops listening to a member that keeps forging', async () => {
    const g = await TestGroup.create({ move }, 3, 1, { keys: true })
    // The voters' writes to the observer are lost: it hears of batches only from the watermark, and gets them from 'x' (or, late, by gap fill).
    const held: Array<Extract<Message, { t: 'write' }>> = []
    g.filter = (_from, to, m) => {
      if (to !== 'o0' || m.t !== 'write') return to !== 'o0' || m.t !== 'gap-rep'
      held.push(m)
      return false
    }
    await g.steps(20)
    const r = await call(g, 'v0', 'm1', { from: 'acct/0', to: 'acct/1', n: 5 })
    expect(r.status).toBe('committed')
    const write = held.find(m => m.batches.length > 0) as Extract<Message, { t: 'write' }>
    expect(write.batches[0]?.sig).toMatch(/^[0-9a-f]{128}$/)
    const o = g.peer('o0')
    // A forged copy first: a thunk's arguments changed. Refused, counted, not evaluated.
    const forged = structuredClone(write.batches) as unknown as Array<{ thunks: Array<{ args: unknown }> }>
    const first = forged[0]?.thunks[0]
    if (first === undefined) throw new Error('no thunk')
    first.args = { from: 'acct/0', to: 'acct/1', n: 50 }
    o.receive('x', { t: 'write', batches: forged as unknown as Batch[], wm: [] })
    await g.steps(20)
    expect(o.status().counters['forged-batch']).toBe(1)
    expect(o.status().evaluated).toBe(0)
    // The copy as signed: taken, evaluated once the watermark passes it, with the voters' outcome.
    o.receive('x', { t: 'write', batches: write.batches, wm: [] })
    await g.steps(40)
    expect(o.status().counters['forwarded-checked']).toBe(2)
    expect(o.status().evaluated).toBe(g.peer('v0').status().evaluated)
    expect(o.status().digest).toBe(g.peer('v0').status().digest)
    // Two more forgeries (of the next batch) make three strikes: after that, even a good copy from 'x' is refused unread.
    const r2 = await call(g, 'v0', 'm2', { from: 'acct/1', to: 'acct/2', n: 1 })
    expect(r2.status).toBe('committed')
    const later = held.filter(m => m.batches.some(b => b.seq > (write.batches[0] as Batch).seq)).flatMap(m => m.batches)
    o.receive('x', { t: 'write', batches: later.map(b => ({ ...b, sig: 'ab'.repeat(64) })), wm: [] })
    o.receive('x', { t: 'write', batches: later.map(b => ({ ...b, sig: 'cd'.repeat(64) })), wm: [] })
    await g.steps(5)
    expect(o.status().counters['forged-batch']).toBe(3)
    o.receive('x', { t: 'write', batches: later, wm: [] })
    await g.steps(5)
    expect(o.status().counters['forwarded-shunned']).toBe(1)
    // A projection passed on is refused unchecked, however it is signed: its signature does not show which partitions the thunks it leaves out touch.
    const projected: Batch = { ...(later[0] as Batch), projected: true, n: (later[0] as Batch).thunks.length, digests: (later[0] as Batch).thunks.map(() => '') }
    g.peer('o0').receive('v9', { t: 'write', batches: [projected], wm: [] })
    await g.steps(2)
    expect(o.status().counters['forwarded-projection-refused']).toBe(1)
    // Voters take batches only from their coordinators, signed or not: from a non-member, or from another voter, refused unchecked.
    const v2 = g.peer('v2').status().counters
    const [refusedBefore, notOwnBefore] = [v2['write-from-non-voter'] ?? 0, v2['write-not-own-refused'] ?? 0]
    g.peer('v2').receive('x', { t: 'write', batches: later, wm: [] })
    g.peer('v2').receive('v1', { t: 'write', batches: later, wm: [] })
    await g.steps(2)
    const after = g.peer('v2').status().counters
    expect(after['write-from-non-voter']).toBe(refusedBefore + 1)
    expect(after['write-not-own-refused']).toBe(notOwnBefore + later.length)
    expect(after['forwarded-checked'] ?? 0).toBe(0)
  })
})
