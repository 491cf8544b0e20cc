import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryStore, signCall } from '@tideline/core'
import { NetClient, NetPeer, createNodeLibp2p, encodeSigned } from '@tideline/net-libp2p'
import { nodeDecisionSigner } from '@tideline/relay'
import { workloadRegistry } from '@tideline/workloads'
import { startLocalGroup, type Health, type LocalGroupOptions, type ProcessGroup, type RelayProcess } from '../src/local-group.js'
import { waitQuiescent, waitUntil } from '../src/workload.js'

// Roles from invites, with real relay processes: a reader reads but its calls are refused; a relay is
// voted in only if its invite grants the voter role.
const hash = (p: string): string => workloadRegistry.procedures.get(p)?.hash ?? ''
const TIMEOUTS = { attemptTimeoutMs: 1_500, timeoutMs: 8_000 }

/** A relay group for the enclosing describe, and its clients' list (stopped with it). */
function groupForFile (o: LocalGroupOptions): { readonly group: () => ProcessGroup, readonly clients: NetClient[] } {
  let group: ProcessGroup | undefined
  const clients: NetClient[] = []
  beforeAll(async () => { group = await startLocalGroup(o) }, 120_000)
  afterAll(async () => {
    for (const c of clients) await c.stop()
    await group?.stop()
  }, 60_000)
  return { group: () => group as ProcessGroup, clients }
}

describe('roles from invites', () => {
  const g = groupForFile({ relays: 3, groupId: 'roles-test' })

  it('a reader reads, and its call is refused with PermissionDeniedError by the voter it reaches; a writer\'s commits', async () => {
    const group = g.group()
    const reader = await group.startClient(TIMEOUTS, { invite: await group.createInvite({ role: 'reader', name: 'rita' }) })
    const writer = await group.startClient(TIMEOUTS, { invite: await group.createInvite({ role: 'writer' }) })
    g.clients.push(reader, writer)
    const transfer = { procedure: 'transfer', hash: hash('transfer'), args: { from: 'a0', to: 'a1', amount: 1 } }
    expect((await writer.call({ clientTxnId: 'w-1', ...transfer })).status).toBe('committed')
    await expect(reader.call({ clientTxnId: 'r-1', ...transfer })).rejects.toMatchObject({ name: 'PermissionDeniedError' })
    const read = await reader.read(['acct/a0', 'acct/a1'])
    expect(read.values).toEqual({ 'acct/a0': 99, 'acct/a1': 101 })
    // Refused by each voter it was sent to (the client went to its home only: the refusal is an answer).
    const refused = await Promise.all(group.relays.map(async r => (await r.metrics()).get('tideline_events_total{event="submit-refused"}') ?? 0))
    expect(refused.reduce((a, b) => a + b, 0)).toBe(1)
    // Nothing it sent took effect: the writer's transfer is the only one.
    expect((await writer.read(['acct/a0'])).values).toEqual({ 'acct/a0': 99 })
  }, 60_000)

  it('a relay whose invite grants only writing is never voted in; one granted the voter role is', async () => {
    const group = g.group()
    const plain = await group.addRelay([], { invite: group.invite })
    await waitUntil('the writer relay follows', async () => (await plain.health()).watermark !== '0'.repeat(36), 20_000)
    const granted = await group.addRelay()
    await waitUntil('the granted relay voted in', async () => (await (group.relays[0] as RelayProcess).health()).voters.includes(granted.id), 30_000)
    // Voted in after the other asked, and by then it had been asking as long as a candidate needs.
    const voters = await Promise.all(group.relays.slice(0, 3).map(async r => (await r.health()).voters))
    for (const v of voters) expect(v).toHaveLength(4)
    for (const v of voters) expect(v).not.toContain(plain.id)
    expect((await plain.health()).role).toBe('observer')
  }, 90_000)
})

describe('a group of signed calls', () => {
  const g = groupForFile({ relays: 3, groupId: 'signed-test', signedCalls: true })

  it('a procedure sees its verified caller; a call made in another member\'s name is aborted with ForgedCallError on every replica, with no effect', async () => {
    const group = g.group()
    const alice = await group.startClient(TIMEOUTS)
    const bob = await group.startClient(TIMEOUTS)
    g.clients.push(alice, bob)
    const note = (k: string): { procedure: string, hash: string, args: { k: string } } => ({ procedure: 'signNote', hash: hash('signNote'), args: { k } })
    expect(await alice.call({ clientTxnId: 'a-1', ...note('a') })).toMatchObject({ status: 'committed', value: alice.id })
    // Bob (or a coordinator) makes a call claiming to be Alice: signed with another key.
    const mallory = await generateKeyPair('Ed25519')
    const forged = await signCall('signed-test', alice.id, mallory, { clientTxnId: 'forged-1', ...note('b'), firstAt: Date.now() })
    expect(await bob.call(forged)).toMatchObject({ status: 'aborted', error: 'ForgedCallError' })
    // Bob's own call goes through as Bob's.
    expect(await bob.call({ clientTxnId: 'b-1', ...note('c') })).toMatchObject({ status: 'committed', value: bob.id })
    await waitQuiescent(group.relays, 30_000)
    const seen = await Promise.all(group.relays.map(async r => ({ h: await r.health(), v: (await alice.read(['note/a', 'note/b', 'note/c'], 'snapshot', { voter: r.id })).values })))
    for (const { h, v } of seen) {
      expect(v).toEqual({ 'note/a': alice.id, 'note/c': bob.id })
      expect(h.evaluated).toBe(3)
    }
    // Every replica reached the same outcomes (the rolling digest covers them).
    expect(new Set(seen.map(s => s.h.digest)).size).toBe(1)
  }, 60_000)

  it('a procedure sees its caller\'s role and name from its invite, checked by every replica: only an admin passes a rule on roles', async () => {
    const group = g.group()
    const ada = await group.startClient(TIMEOUTS, { invite: await group.createInvite({ role: 'admin', name: 'ada' }) })
    const wes = await group.startClient(TIMEOUTS, { invite: await group.createInvite({ role: 'writer', name: 'wes' }) })
    g.clients.push(ada, wes)
    const admin = (k: string): { procedure: string, hash: string, args: { k: string } } => ({ procedure: 'adminNote', hash: hash('adminNote'), args: { k } })
    expect(await ada.call({ clientTxnId: 'ada-1', ...admin('limit') })).toMatchObject({ status: 'committed', value: { id: ada.id, role: 'admin', name: 'ada' } })
    expect(await wes.call({ clientTxnId: 'wes-1', ...admin('limit') })).toMatchObject({ status: 'aborted', error: 'ProcedureError', reason: expect.stringContaining('wes is a writer') })
    await waitQuiescent(group.relays, 30_000)
    for (const r of group.relays) expect((await wes.read(['admin/limit'], 'snapshot', { voter: r.id })).values).toEqual({ 'admin/limit': { id: ada.id, role: 'admin', name: 'ada' } })
    expect(new Set((await Promise.all(group.relays.map(async r => r.health()))).map(h => h.digest)).size).toBe(1)
  }, 60_000)

  it('calls whose caller a coordinator forges (a voter of the group) are aborted with ForgedCallError on every replica; what it passes on unaltered runs', async () => {
    const group = g.group()
    const aliceKey = await generateKeyPair('Ed25519')
    const aliceSigner = nodeDecisionSigner(aliceKey)
    const alice = await NetClient.start({ privateKey: aliceKey, signer: aliceSigner, voters: group.relays.map(r => r.tcp), invite: group.invite, creator: group.creatorId, ...TIMEOUTS })
    g.clients.push(alice)
    // The lying coordinator: a voter like any other (a voter invite, voted in), run in this process so the test can make it lie.
    const key = await generateKeyPair('Ed25519')
    const id = peerIdFromPrivateKey(key).toString()
    const rogue = await NetPeer.start({
      privateKey: key,
      genesis: group.genesis,
      invite: await group.createInvite({ role: 'voter', peer: id }),
      registry: workloadRegistry,
      store: new MemoryStore(),
      createNode: async k => createNodeLibp2p({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true }),
      peers: group.relays.map(r => r.tcp),
      candidate: true,
      signer: nodeDecisionSigner(key)
    })
    try {
      await waitUntil('the rogue is voted in', async () => (await Promise.all(group.relays.map(async r => (await r.health()).voters))).every(v => v.includes(id)), 30_000)
      const note = (k: string): { procedure: string, hash: string, args: { k: string } } => ({ procedure: 'signNote', hash: hash('signNote'), args: { k } })
      // Alice's own signed call (presenting her invite), minted by the rogue as it came: it runs, as Alice's.
      const aliceInvite = encodeSigned(group.invite)
      const honest = await signCall('signed-test', alice.id, aliceSigner, { clientTxnId: 'via-rogue-1', ...note('r1'), firstAt: Date.now() }, aliceInvite)
      expect(await rogue.peer.submit(honest)).toMatchObject({ status: 'committed', value: alice.id })
      // Alice's signature, on arguments the rogue changed.
      const altered = await signCall('signed-test', alice.id, aliceSigner, { clientTxnId: 'via-rogue-2', ...note('r2'), firstAt: Date.now() }, aliceInvite)
      expect(await rogue.peer.submit({ ...altered, args: { k: 'r2-changed' } })).toMatchObject({ status: 'aborted', error: 'ForgedCallError' })
      // A call the rogue makes up in Alice's name, signed with its own key.
      const madeUp = await signCall('signed-test', alice.id, nodeDecisionSigner(key), { clientTxnId: 'via-rogue-3', ...note('r3'), firstAt: Date.now() }, aliceInvite)
      expect(await rogue.peer.submit(madeUp)).toMatchObject({ status: 'aborted', error: 'ForgedCallError' })
      // Alice's call with an admin invite the rogue holds lent to it (to pass a rule on roles): her signature covers her own invite.
      const adminInvite = encodeSigned(await group.createInvite({ role: 'admin' }))
      const lent = await signCall('signed-test', alice.id, aliceSigner, { clientTxnId: 'via-rogue-4', procedure: 'adminNote', hash: hash('adminNote'), args: { k: 'r4' }, firstAt: Date.now() }, aliceInvite)
      expect(await rogue.peer.submit({ ...lent, caller: { ...lent.caller, invite: adminInvite } })).toMatchObject({ status: 'aborted', error: 'ForgedCallError' })
      // The rogue coordinated all four (they were in its batches), and every replica reached the same outcomes.
      expect(rogue.peer.status().counters.minted).toBeGreaterThanOrEqual(4)
      await waitQuiescent(group.relays, 30_000)
      const keys = ['note/r1', 'note/r2', 'note/r2-changed', 'note/r3', 'admin/r4']
      for (const r of group.relays) expect((await alice.read(keys, 'snapshot', { voter: r.id })).values).toEqual({ 'note/r1': alice.id })
      const healths = await Promise.all(group.relays.map(async r => r.health()))
      await waitUntil('the rogue evaluated as far', async () => rogue.peer.status().evaluated === (healths[0] as Health).evaluated, 10_000)
      expect(new Set([...healths.map(h => h.digest), rogue.peer.status().digest]).size).toBe(1)
    } finally {
      await rogue.stop()
    }
  }, 90_000)
})
