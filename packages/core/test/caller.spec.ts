import { generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { describe, expect, it } from 'vitest'
import {
  Hasher, MemoryStore, TS_ZERO, callStatement, createRegistry, fromHex, makeTimestamp, peerTag, storeApplier, strictPoint, strictSignature, toHex,
  type CallerSig, type Cursor, type InviteClaims, type ReadInvite, type RunRules, type Thunk, type Tx
} from '../src/index.js'

// Signed calls: every replica's verdict on a caller must be the same, so the strict checks before the
// platform's verification are tested against an independent implementation (noble), and the applier
// against a forged caller, another member's name, and no signature at all.

const keys = new Map<string, { readonly privateKey: KeyObject, readonly publicKey: KeyObject }>()
const keyOf = (id: string): { readonly privateKey: KeyObject, readonly publicKey: KeyObject } => {
  let k = keys.get(id)
  if (k === undefined) { k = generateKeyPairSync('ed25519'); keys.set(id, k) }
  return k
}
const verifyCall = (peer: string, statement: Uint8Array, sig: Uint8Array): boolean => verify(null, statement, keyOf(peer).publicKey, sig)

const procedures = {
  note: {
    keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { tx.put(a.k, tx.caller?.id ?? 'nobody'); return tx.caller?.id ?? null }
  }
}
const registry = createRegistry(procedures)
const rules: RunRules = { txnRetentionMs: 60_000, txnSkewMs: 1_000, groupId: 'g', signedCalls: true, revoked: [] }
const base: Cursor = { frontier: TS_ZERO, last: TS_ZERO, count: 0, digest: new Hasher().state, evalNext: {} }
const hash = registry.procedures.get('note')?.hash ?? ''

function thunk (i: number, id: string, k: string, caller: CallerSig | undefined): Thunk {
  const t: Thunk = { ts: makeTimestamp(1_000 + i, peerTag('c'), 0), epoch: 0, coordinator: 'c', seq: 1, index: i, procedure: 'note', hash, args: { k }, reads: [], writes: [k], clientTxnId: id, firstAt: 1_000 + i }
  return caller === undefined ? t : { ...t, caller }
}
const signedBy = (signer: string, t: Thunk): CallerSig => ({ id: signer, sig: toHex(new Uint8Array(sign(null, callStatement('g', t), keyOf(signer).privateKey))) })

describe('strict signature checks', () => {
  it('refuses exactly the small-order and non-canonical encodings (checked against noble)', () => {
    const smallOrder = [
      '0100000000000000000000000000000000000000000000000000000000000000', 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      '0000000000000000000000000000000000000000000000000000000000000000', '0000000000000000000000000000000000000000000000000000000000000080',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa'
    ]
    for (const hex of smallOrder) {
      // noble agrees each is a point of small order, and the eight are distinct points.
      expect(ed25519.Point.fromHex(hex).isSmallOrder()).toBe(true)
      expect(strictPoint(fromHex(hex))).toBe(false)
    }
    expect(new Set(smallOrder.map(h => ed25519.Point.fromHex(h).toHex())).size).toBe(8)
    // Ordinary keys pass; y = p (a non-canonical encoding of y = 0) and a short encoding do not.
    for (let i = 0; i < 20; i++) expect(strictPoint(ed25519.getPublicKey(ed25519.utils.randomSecretKey()))).toBe(true)
    expect(strictPoint(fromHex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'))).toBe(false)
    expect(strictPoint(new Uint8Array(31))).toBe(false)
    // x = 0 with the sign bit set: non-canonical encodings of the identity and of the point of order 2.
    expect(strictPoint(fromHex('0100000000000000000000000000000000000000000000000000000000000080'))).toBe(false)
    expect(strictPoint(fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'))).toBe(false)
    // A real signature passes; the same with S + L (a malleated, non-canonical S) does not.
    const sk = ed25519.utils.randomSecretKey()
    const sig = ed25519.sign(new Uint8Array([1, 2, 3]), sk)
    expect(strictSignature(sig)).toBe(true)
    const L = (1n << 252n) + 27742317777372353535851937790883648493n
    let s = 0n
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i] as number)
    s += L
    const malleated = Uint8Array.from(sig)
    for (let i = 32; i < 64; i++) { malleated[i] = Number(s & 0xffn); s >>= 8n }
    expect(strictSignature(malleated)).toBe(false)
  })
})

describe('signed calls in the applier', () => {
  it('runs a signed call with tx.caller; refuses another member\'s name, a broken signature and an unsigned call, the same on every replica, with no effect and no record', async () => {
    const run: Thunk[] = []
    run.push(thunk(0, 'ok', 'k0', undefined))
    run[0] = { ...(run[0] as Thunk), caller: signedBy('alice', run[0] as Thunk) }
    const other = thunk(1, 'other', 'k1', undefined)
    run.push({ ...other, caller: { ...signedBy('mallory', other), id: 'alice' } })
    const broken = thunk(2, 'broken', 'k2', undefined)
    const good = signedBy('alice', broken)
    run.push({ ...broken, caller: { id: 'alice', sig: `${good.sig.slice(0, 126)}${good.sig.slice(126) === '00' ? '01' : '00'}` } })
    run.push(thunk(3, 'unsigned', 'k3', undefined))
    const outcomes = []
    for (let replica = 0; replica < 2; replica++) {
      const store = new MemoryStore()
      const applied = await storeApplier({ store, registry, verifyCall })(run, base, rules)
      outcomes.push(applied.results.map(r => r?.status === 'committed' ? `committed ${JSON.stringify(r.value)}` : r?.error))
      expect(store.entriesSync(makeTimestamp(9_999, peerTag('c'), 0))).toEqual([['k0', 'alice']])
      expect(await store.txnRecords(['ok', 'other', 'broken', 'unsigned'])).toEqual([expect.any(String), undefined, undefined, undefined])
    }
    expect(outcomes[0]).toEqual(['committed "alice"', 'ForgedCallError', 'ForgedCallError', 'PermissionDeniedError'])
    expect(outcomes[1]).toEqual(outcomes[0])
  })

  it('refuses a revoked caller\'s calls above the revocation\'s timestamp only, with no effect and no record', async () => {
    const run = [0, 1, 2].map(i => { const t = thunk(i, `r${i}`, `k${i}`, undefined); return { ...t, caller: signedBy(i === 2 ? 'bob' : 'alice', t) } })
    // Revoked from just above the first call: the second is refused, the first and bob's run.
    const revoked = [{ kind: 'peer' as const, id: 'alice', from: (run[0] as Thunk).ts }, { kind: 'invite' as const, id: 'ab'.repeat(32), from: TS_ZERO }]
    const store = new MemoryStore()
    const applied = await storeApplier({ store, registry, verifyCall })(run, base, { ...rules, revoked })
    expect(applied.results.map(r => r?.status === 'committed' ? r.value : r?.error)).toEqual(['alice', 'PermissionDeniedError', 'bob'])
    expect(await store.txnRecords(['r0', 'r1', 'r2'])).toEqual([expect.any(String), undefined, expect.any(String)])
    // In a group without signed calls nothing proves who called, so nothing is refused here (voters refuse the member's submissions).
    const open = await storeApplier({ store: new MemoryStore(), registry, verifyCall })(run, base, { ...rules, signedCalls: false, revoked })
    expect(open.results.map(r => r?.status)).toEqual(['committed', 'committed', 'committed'])
  })

  it('in a group made from a signed genesis, tx.caller carries its invite\'s role and name, checked by every replica', async () => {
    // Invites in a test form: the claims as JSON, signed by the issuer (the applier checks the issuer's signature).
    const genesis = { creator: 'creator', voters: ['issuer', 'voter2'], digest: 'g1' }
    const inviteOf = (claims: Record<string, unknown>, signer = 'issuer'): string => JSON.stringify({ claims: { groupId: 'g', genesis: 'g1', issuer: 'issuer', expiresAt: 5_000, role: 'writer', ...claims }, sig: toHex(new Uint8Array(sign(null, new TextEncoder().encode(JSON.stringify(claims)), keyOf(signer).privateKey))), raw: JSON.stringify(claims) })
    const readInvite = (text: string): ReadInvite | undefined => {
      try {
        const v = JSON.parse(text) as { claims: InviteClaims, sig: string, raw: string }
        return { claims: v.claims, digest: v.raw.length.toString(16).padStart(64, '0'), statement: new TextEncoder().encode(v.raw), sig: fromHex(v.sig) }
      } catch { return undefined }
    }
    const calls: Array<[string, string | undefined, string?]> = [
      ['alice', inviteOf({ role: 'writer', name: 'Alice' })], // a writer with a name
      ['rita', inviteOf({ role: 'reader' })], // a reader may not call
      ['bob', inviteOf({ role: 'admin', peer: 'carol' })], // issued to another peer
      ['dave', inviteOf({ role: 'admin', expiresAt: -100_000 })], // expired long before the call (beyond the skew)
      ['erin', inviteOf({ role: 'admin' }, 'mallory')], // not signed by its issuer
      ['frank', inviteOf({ role: 'admin', issuer: 'voter2' })], // claims voter2 issued it, signed by issuer: does not hold
      ['creator', undefined], // the creator needs none: admin
      ['voter2', undefined], // a genesis voter needs none: voter
      ['gina', undefined], // anyone else does
      ['hal', inviteOf({ role: 'writer', name: 'Hal' }), inviteOf({ role: 'admin', name: 'Hal' })] // signed with one invite, presented with another
    ]
    const byRole = createRegistry({ who: { keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }), run: (tx: Tx) => ({ role: tx.caller?.role ?? null, name: tx.caller?.name ?? null }) } })
    const whoRun = calls.map(([who, invite, swapped], i) => {
      const t = { ...thunk(i, `c${i}`, `k${i}`, undefined), procedure: 'who', hash: byRole.procedures.get('who')?.hash ?? '' }
      const sig = toHex(new Uint8Array(sign(null, callStatement('g', t, invite), keyOf(who).privateKey)))
      const presented = swapped ?? invite
      return { ...t, caller: { id: who, sig, ...(presented === undefined ? {} : { invite: presented }) } }
    })
    const results = []
    for (let replica = 0; replica < 2; replica++) {
      const applied = await storeApplier({ store: new MemoryStore(), registry: byRole, verifyCall, readInvite })(whoRun, base, { ...rules, genesis })
      results.push(applied.results.map(r => r?.status === 'committed' ? r.value : r?.error))
    }
    expect(results[0]).toEqual([
      { role: 'writer', name: 'Alice' }, 'PermissionDeniedError', 'PermissionDeniedError', 'PermissionDeniedError', 'PermissionDeniedError', 'PermissionDeniedError',
      { role: 'admin', name: null }, { role: 'voter', name: null }, 'PermissionDeniedError', 'ForgedCallError'
    ])
    expect(results[1]).toEqual(results[0])
    // A revoked invite stops admitting from the revocation on.
    const digest = readInvite(calls[0]?.[1] as string)?.digest as string
    const revoked = await storeApplier({ store: new MemoryStore(), registry: byRole, verifyCall, readInvite })([whoRun[0] as Thunk], base, { ...rules, genesis, revoked: [{ kind: 'invite', id: digest, from: TS_ZERO }] })
    expect(revoked.results[0]).toMatchObject({ status: 'aborted', error: 'PermissionDeniedError', reason: expect.stringContaining('revoked') })
    // So does every invite of a revoked issuer (a voter's stolen key must not mint members after it is revoked).
    const issuerRevoked = await storeApplier({ store: new MemoryStore(), registry: byRole, verifyCall, readInvite })([whoRun[0] as Thunk], base, { ...rules, genesis, revoked: [{ kind: 'peer', id: 'issuer', from: TS_ZERO }] })
    expect(issuerRevoked.results[0]).toMatchObject({ status: 'aborted', error: 'PermissionDeniedError', reason: expect.stringContaining('issuer') })
  })

  it('in a group without signed calls, callers are not checked and tx.caller is undefined', async () => {
    const t = thunk(0, 'open', 'k0', { id: 'alice', sig: '00'.repeat(64) })
    const store = new MemoryStore()
    const applied = await storeApplier({ store, registry, verifyCall })([t], base, { ...rules, signedCalls: false })
    expect(applied.results[0]).toMatchObject({ status: 'committed', value: null })
    expect(store.entriesSync(makeTimestamp(9_999, peerTag('c'), 0))).toEqual([['k0', 'nobody']])
  })
})
