import { describe, expect, it } from 'vitest'
import { TS_ZERO, type Timestamp } from '@tideline/core'
import { Members } from '../src/members.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decode, encode } from 'cborg'
import {
  configFromGenesis, createGenesis, createInvite, decodeSigned, encodeSigned, genesisDigest, inviteRole, roleAllows, verifyGenesis, verifyInvite
} from '../src/index.js'

async function key (): Promise<{ key: Awaited<ReturnType<typeof generateKeyPair>>, id: string }> {
  const k = await generateKeyPair('Ed25519')
  return { key: k, id: peerIdFromPrivateKey(k).toString() }
}

describe('signed genesis and invites', () => {
  it('a genesis verifies against its creator and survives its text form; any change to it does not', async () => {
    const creator = await key()
    const voters = await Promise.all([key(), key(), key()])
    const signed = await createGenesis(creator.key, { groupId: 'bank', voters: voters.map(v => v.id), registryHash: 'r1', createdAt: 1 })
    const g = await verifyGenesis(decodeSigned(encodeSigned(signed)), creator.id)
    expect(configFromGenesis(g, 'd1')).toEqual({ groupId: 'bank', epoch: 0, voters: voters.map(v => v.id), registryHash: 'r1', genesis: { creator: creator.id, voters: voters.map(v => v.id), digest: 'd1' } })

    const other = await key()
    await expect(verifyGenesis(signed, other.id)).rejects.toMatchObject({ name: 'InvalidCredentialError' })
    // The same fields, one voter swapped, under the original signature.
    const tampered = encode({ ...g, voters: [other.id, ...g.voters.slice(1)] })
    await expect(verifyGenesis({ body: tampered, sig: signed.sig })).rejects.toMatchObject({ name: 'InvalidCredentialError', message: expect.stringContaining('signature') as unknown })
    // A different key re-signing it claims a creator it is not.
    const resigned = await createGenesis(other.key, { groupId: 'bank', voters: g.voters, registryHash: 'r1', createdAt: 1 })
    await expect(verifyGenesis(resigned, creator.id)).rejects.toMatchObject({ name: 'InvalidCredentialError' })
    // Garbage never escapes as anything but the named error.
    for (const junk of ['', '!!!', 'AAAA', encodeSigned({ body: new Uint8Array([0xff]), sig: new Uint8Array(64) })]) {
      await expect((async () => verifyGenesis(decodeSigned(junk)))()).rejects.toMatchObject({ name: 'InvalidCredentialError' })
    }
  })

  it('a genesis carries the group\'s exactly-once retention into its config, and refuses one that is not a positive integer', async () => {
    const creator = await key()
    const voters = [(await key()).id]
    const g = await verifyGenesis(await createGenesis(creator.key, { groupId: 'g', voters, registryHash: 'r', txnRetentionMs: 60_000 }))
    expect(configFromGenesis(g, 'd1')).toMatchObject({ txnRetentionMs: 60_000 })
    expect(configFromGenesis(g, 'd1').txnSkewMs).toBeUndefined()
    for (const bad of [0, -5, 1.5]) {
      await expect(createGenesis(creator.key, { groupId: 'g', voters, registryHash: 'r', txnRetentionMs: bad })).rejects.toMatchObject({ name: 'InvalidCredentialError', message: expect.stringContaining('txnRetentionMs') as unknown })
    }
  })

  it('a genesis carries the group\'s partitions into its config, and refuses a partition spec out of shape', async () => {
    const creator = await key()
    const voters = [(await key()).id]
    const partitions = { count: 4, depth: 2, assign: { 'board:a': 1 } }
    const g = await verifyGenesis(await createGenesis(creator.key, { groupId: 'p', voters, registryHash: 'r', createdAt: 1, partitions }))
    expect(configFromGenesis(g, 'd').partitions).toEqual(partitions)
    for (const bad of [{ count: 0 }, { count: 2, assign: { x: 5 } }, { count: 2, separator: '' }]) {
      await expect(createGenesis(creator.key, { groupId: 'p', voters, registryHash: 'r', partitions: bad })).rejects.toMatchObject({ name: 'InvalidCredentialError', message: expect.stringContaining('partitions') as unknown })
    }
    // Signed by the creator but out of shape: verifying refuses it too.
    const body = encode({ v: 1, groupId: 'p', creator: creator.id, voters, registryHash: 'r', createdAt: 1, partitions: 'all' })
    await expect(verifyGenesis({ body, sig: new Uint8Array(64) })).rejects.toMatchObject({ name: 'InvalidCredentialError' })
  })

  it('an invite admits only while valid: right group and genesis, a voter issuer, the named peer, not expired', async () => {
    const creator = await key()
    const voters = await Promise.all([key(), key()])
    const signed = await createGenesis(creator.key, { groupId: 'bank', voters: voters.map(v => v.id), registryHash: 'r1' })
    const g = await verifyGenesis(signed)
    const digest = await genesisDigest(signed.body)
    const alice = await key()
    const bob = await key()
    const now = Date.now()
    const bearer = await createInvite(voters[0].key, signed, { expiresAt: now + 1_000 })
    await expect(verifyInvite(bearer, g, digest, alice.id, now)).resolves.toMatchObject({ issuer: voters[0].id })
    await expect(verifyInvite(bearer, g, digest, bob.id, now)).resolves.toMatchObject({ groupId: 'bank' })
    await expect(verifyInvite(bearer, g, digest, alice.id, now + 3_600_000)).rejects.toMatchObject({ name: 'InvalidCredentialError', message: expect.stringContaining('expired') as unknown })

    const forAlice = await createInvite(voters[1].key, signed, { peer: alice.id, expiresAt: now + 60_000 })
    await expect(verifyInvite(forAlice, g, digest, alice.id, now)).resolves.toMatchObject({ peer: alice.id })
    await expect(verifyInvite(forAlice, g, digest, bob.id, now)).rejects.toMatchObject({ name: 'InvalidCredentialError' })

    // Non-voters cannot issue; an invite to another genesis does not carry over.
    await expect(createInvite(alice.key, signed, { expiresAt: now + 60_000 })).rejects.toMatchObject({ name: 'InvalidCredentialError' })
    const otherGenesis = await createGenesis(creator.key, { groupId: 'bank', voters: voters.map(v => v.id), registryHash: 'r2' })
    const elsewhere = await createInvite(voters[0].key, otherGenesis, { expiresAt: now + 60_000 })
    await expect(verifyInvite(elsewhere, g, digest, alice.id, now)).rejects.toMatchObject({ name: 'InvalidCredentialError' })
    // A genesis signature is not an invite signature (domain separation).
    await expect(verifyInvite({ body: bearer.body, sig: signed.sig }, g, digest, alice.id, now)).rejects.toMatchObject({ name: 'InvalidCredentialError', message: expect.stringContaining('signature') as unknown })
  })

  it('an invite carries a role and a name, checked with the rest; without a role it grants writing', async () => {
    const creator = await key()
    const voter = await key()
    const signed = await createGenesis(creator.key, { groupId: 'roles', voters: [voter.id], registryHash: 'r1' })
    const g = await verifyGenesis(signed)
    const digest = await genesisDigest(signed.body)
    const alice = await key()
    const now = Date.now()
    const signedReader = await createInvite(voter.key, signed, { expiresAt: now + 60_000, role: 'reader', name: 'alice' })
    const reader = await verifyInvite(signedReader, g, digest, alice.id, now)
    expect(reader).toMatchObject({ role: 'reader', name: 'alice' })
    expect(inviteRole(reader)).toBe('reader')
    expect(inviteRole(await verifyInvite(await createInvite(voter.key, signed, { expiresAt: now + 60_000 }), g, digest, alice.id, now))).toBe('writer')
    expect([roleAllows('reader', 'writer'), roleAllows('writer', 'writer'), roleAllows('voter', 'writer'), roleAllows('admin', 'voter'), roleAllows('writer', 'voter'), roleAllows(undefined, 'reader')])
      .toEqual([false, true, true, true, false, false])
    await expect(createInvite(voter.key, signed, { expiresAt: now + 60_000, role: 'owner' as never })).rejects.toMatchObject({ name: 'InvalidCredentialError' })
    await expect(createInvite(voter.key, signed, { expiresAt: now + 60_000, name: 'x'.repeat(65) })).rejects.toMatchObject({ name: 'InvalidCredentialError' })
    // A role changed after signing breaks the signature: the body is what was signed.
    const forged = { body: encode({ ...(decode(signedReader.body) as Record<string, unknown>), role: 'admin' }), sig: signedReader.sig }
    await expect(verifyInvite(forged, g, digest, alice.id, now)).rejects.toMatchObject({ name: 'InvalidCredentialError' })
  })
})

describe('Members', () => {
  const genesis = { v: 1 as const, groupId: 'g', creator: 'creator', voters: ['v0'], registryHash: 'r', createdAt: 1 }

  it('a role an invite gave lasts until the invite expires or is revoked, and a revoked peer is no member at all', () => {
    const revoked: Array<{ kind: 'peer' | 'invite', id: string, from: Timestamp }> = []
    const m = new Members(genesis, () => ['v0'], () => false, () => revoked)
    const now = Date.now()
    m.admit('admin', 'admin', 'd1', now + 3_600_000)
    m.admit('stale', 'admin', 'd2', now - 120_000)
    m.admit('both', 'admin', 'd3', now - 120_000)
    m.admit('both', 'reader', 'd4', now + 3_600_000)
    // The expired invite (past the skew allowed) no longer counts; the other one of the same peer does.
    expect([m.roleOf('admin'), m.roleOf('stale'), m.roleOf('both')]).toEqual(['admin', undefined, 'reader'])
    revoked.push({ kind: 'invite', id: 'd1', from: TS_ZERO }, { kind: 'peer', id: 'v0', from: TS_ZERO }, { kind: 'peer', id: 'creator', from: TS_ZERO })
    expect([m.roleOf('admin'), m.cutOff('admin'), m.roleOf('v0'), m.roleOf('creator')]).toEqual([undefined, true, undefined, 'admin'])
  })
})
