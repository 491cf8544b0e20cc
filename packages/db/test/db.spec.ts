import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey } from '@libp2p/interface'
import { MemoryStore } from '@tideline/core'
import { NetPeer, createGenesis, createInvite, createNodeLibp2p, encodeSigned, type SignedGenesis } from '@tideline/net-libp2p'
import { openDatabase, registryOf, type Database } from '../src/index.js'
import { INITIAL, bank } from './bank.js'

// The public API in Node: three in-process voters on loopback TCP, databases
// with in-process MemoryStores joining them with an invite.
const ACCOUNTS = ['a', 'b', 'c', 'd']

async function key (): Promise<{ key: PrivateKey, id: string }> {
  const k = await generateKeyPair('Ed25519')
  return { key: k, id: peerIdFromPrivateKey(k).toString() }
}

const tcpNode = (privateKey: PrivateKey) => createNodeLibp2p({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true })

describe('@tideline/db in Node', () => {
  const voters: NetPeer[] = []
  let genesis: SignedGenesis
  let creator: string
  let invite: string
  let addrs: string[]
  const dbs: Array<Database<typeof bank>> = []

  const open = async (store = new MemoryStore(), privateKey?: PrivateKey): Promise<Database<typeof bank>> => {
    const db = await openDatabase({ name: 'bank', procedures: bank, peers: addrs, invite, creator, store, createNode: tcpNode, timeoutMs: 5_000, ...(privateKey === undefined ? {} : { privateKey }) })
    dbs.push(db)
    return db
  }

  beforeAll(async () => {
    const keys = await Promise.all([key(), key(), key()])
    const first = keys[0]
    if (first === undefined) throw new Error('no keys')
    const c = await key()
    creator = c.id
    genesis = await createGenesis(c.key, { groupId: 'db-test', voters: keys.map(k => k.id), registryHash: registryOf(bank).hash })
    for (const k of keys) voters.push(await NetPeer.start({ privateKey: k.key, genesis, registry: registryOf(bank), store: new MemoryStore(), createNode: tcpNode }))
    addrs = voters.map(v => v.addresses()[0] as string)
    for (const v of voters) for (const a of addrs) if (!a.endsWith(v.id)) await v.node.dial(multiaddr(a))
    invite = encodeSigned(await createInvite(first.key, genesis, { expiresAt: Date.now() + 60_000 }))
  }, 30_000)

  afterAll(async () => {
    for (const d of dbs) await d.close()
    for (const v of voters) await v.stop()
  })

  it('calls typed procedures; every subscription callback sees the exact bank total; replicas agree', async () => {
    const [x, y] = [await open(), await open()]
    await Promise.all([x.online, y.online])
    const totals: number[] = []
    const keys = ACCOUNTS.map(a => `acct/${a}`)
    const stop = y.subscribe(keys, values => {
      totals.push(keys.reduce((sum, k) => sum + ((values[k] as number | undefined) ?? INITIAL), 0))
    })
    const results = await Promise.all([x, y].flatMap((db, d) => Array.from({ length: 10 }, (_, i) =>
      db.call('transfer', { from: ACCOUNTS[(i + d) % 4] as string, to: ACCOUNTS[(i + d + 1) % 4] as string, amount: 1 + (i % 7) }))))
    expect(results.every(r => r.status === 'committed')).toBe(true)
    expect(results.map(r => r.status === 'committed' ? typeof r.value.from : r.status)).toEqual(results.map(() => 'number'))
    const strict = await x.read(keys)
    expect(keys.reduce((s, k) => s + ((strict.values[k] as number | undefined) ?? INITIAL), 0)).toBe(INITIAL * 4)
    // Every call returned, so some voter has evaluated all of them: both replicas catch up with the furthest voter.
    // Not with x's count read once: under load a forward is retried and minted again (a no-op the applier drops)
    // after x's read, and y counts that thunk too (CI saw y at 60 against x's 50 read earlier).
    const target = Math.max(...voters.map(v => v.peer.status().evaluated))
    await expect.poll(() => Math.min(x.status().evaluated, y.status().evaluated), { timeout: 10_000 }).toBeGreaterThanOrEqual(target)
    // y's subscription followed every run it evaluated, each a consistent snapshot.
    expect(totals.length).toBeGreaterThan(1)
    expect(totals.every(t => t === INITIAL * 4)).toBe(true)
    stop()
    await expect.poll(() => y.status().evaluated === x.status().evaluated && y.status().digest === x.status().digest, { timeout: 5_000 }).toBe(true)
    expect(voters.map(v => v.peer.status().digest)).toContain(x.status().digest)
    expect(x.status()).toMatchObject({ role: 'observer', network: 'online', voters: 3, groupId: 'db-test' })
  })

  it('checks schemas before submitting, names unknown procedures, and refuses Date.now inside run', async () => {
    const db = await open()
    const before = voters[0]?.peer.status().evaluated ?? 0
    await expect(db.call('deposit', { to: '', amount: 5 })).rejects.toMatchObject({ name: 'InvalidArgumentError' })
    await expect(db.call('deposit', { to: 'a', amount: -1 })).rejects.toThrow(/amount/)
    // @ts-expect-error not a procedure of this database
    await expect(db.call('nope', {})).rejects.toMatchObject({ name: 'UnknownProcedureError' })
    expect(voters[0]?.peer.status().evaluated).toBe(before)
    const ok = await db.call('deposit', { to: 'z', amount: 5 })
    expect(ok).toMatchObject({ status: 'committed', value: INITIAL + 5 })
    await expect(db.call('clock', undefined)).rejects.toMatchObject({ name: 'InvalidValueError' })
    const clock = await db.call('clock', null)
    expect(clock).toMatchObject({ status: 'aborted', error: 'NondeterminismError' })
  })

  it('retries with the same clientTxnId apply once; reconnaissance plans from a read; abort signals cancel', async () => {
    const db = await open()
    const id = 'same-id-1'
    const first = await db.call('deposit', { to: 'r', amount: 3 }, { clientTxnId: id })
    const again = await db.call('deposit', { to: 'r', amount: 3 }, { clientTxnId: id })
    expect(again).toMatchObject({ status: 'committed', value: INITIAL + 3 })
    expect(again.ts).toBe(first.ts)
    expect((await db.read(['acct/r'])).values['acct/r']).toBe(INITIAL + 3)
    const swept = await db.reconnoiter({ keys: ['acct/r'], plan: v => ({ procedure: 'sweep', args: { from: 'r', to: 's', expected: (v['acct/r'] as number | undefined) ?? INITIAL } }) })
    expect(swept).toMatchObject({ status: 'committed', value: INITIAL + 3 })
    const ac = new AbortController()
    ac.abort()
    await expect(db.call('deposit', { to: 'r', amount: 1 }, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('reads ranges in key order (strict and snapshot, limit, reverse); a range subscription follows inserts, updates and deletes with what changed', async () => {
    const [x, y] = [await open(), await open()]
    await Promise.all([x.online, y.online])
    const updates: Array<{ keys: string[], added: readonly string[], updated: readonly string[], removed: readonly string[] }> = []
    const stop = y.subscribe({ prefix: 'acct/q/' }, (values, _ts, u) => {
      expect(Object.keys(values).sort()).toEqual(u.entries.map(([k]) => k))
      updates.push({ keys: u.entries.map(([k]) => k), ...u.changes })
    })
    for (const to of ['q/b', 'q/a', 'q/10', 'q/c', 'qq', 'q']) await x.call('deposit', { to, amount: 1 })
    const all = await x.read({ prefix: 'acct/q/' })
    expect(all.entries).toEqual([['acct/q/10', INITIAL + 1], ['acct/q/a', INITIAL + 1], ['acct/q/b', INITIAL + 1], ['acct/q/c', INITIAL + 1]])
    expect((await x.read({ start: 'acct/q/a', end: 'acct/q/c' })).entries?.map(([k]) => k)).toEqual(['acct/q/a', 'acct/q/b'])
    expect((await x.read({ prefix: 'acct/q/' }, { reverse: true, limit: 2 })).entries?.map(([k]) => k)).toEqual(['acct/q/c', 'acct/q/b'])
    // A subscription may skip states between two callbacks (each one is consistent): wait for this one before going on.
    await expect.poll(() => updates[updates.length - 1]?.keys).toEqual(['acct/q/10', 'acct/q/a', 'acct/q/b', 'acct/q/c'])
    await x.call('deposit', { to: 'q/a', amount: 5 })
    await x.call('close', { name: 'q/b' })
    const strict = await y.read({ prefix: 'acct/q/' })
    expect(strict.entries).toEqual([['acct/q/10', INITIAL + 1], ['acct/q/a', INITIAL + 6], ['acct/q/c', INITIAL + 1]])
    // y's replica has evaluated past the strict read's timestamp: a snapshot read and the subscription agree with it.
    expect((await y.read({ prefix: 'acct/q/' }, { consistency: 'snapshot' })).entries).toEqual(strict.entries)
    await expect.poll(() => updates[updates.length - 1]?.keys).toEqual(['acct/q/10', 'acct/q/a', 'acct/q/c'])
    expect(updates.flatMap(u => u.added).sort()).toEqual(['acct/q/10', 'acct/q/a', 'acct/q/b', 'acct/q/c'])
    expect(updates.flatMap(u => u.updated)).toContain('acct/q/a')
    expect(updates.flatMap(u => u.removed)).toEqual(['acct/q/b'])
    // Keys outside the range (acct/qq, acct/q) never show.
    expect(updates.flatMap(u => u.keys).every(k => k.startsWith('acct/q/'))).toBe(true)
    stop()
    await expect(x.read({ prefix: 'acct/' }, { limit: 0 })).rejects.toMatchObject({ name: 'InvalidArgumentError' })
    await expect(x.read({ start: 7 } as unknown as { start: string })).rejects.toMatchObject({ name: 'InvalidArgumentError' })
  })

  it('optimistic calls: the local result at once, subscriptions show the write as pending until it is final, the final result says whether the guess held', async () => {
    const [x] = [await open()]
    await x.synced()
    const seen: Array<{ value: unknown, pending: readonly string[] }> = []
    const stop = x.subscribe(['acct/opt'], (values, _ts, u) => { seen.push({ value: values['acct/opt'], pending: u.pending }) })
    await expect.poll(() => seen.length).toBeGreaterThan(0)
    const call = x.call('deposit', { to: 'opt', amount: 5 }, { optimistic: true })
    expect(await call.local).toEqual({ status: 'committed', value: INITIAL + 5, speculative: true })
    // Shown before anything is final: the first callback with the new value flags it as pending.
    await expect.poll(() => seen.find(s => s.value === INITIAL + 5)?.pending).toEqual(['acct/opt'])
    const final = await call
    expect(final).toMatchObject({ status: 'committed', value: INITIAL + 5, speculation: 'confirmed' })
    await expect.poll(() => seen[seen.length - 1]).toEqual({ value: INITIAL + 5, pending: [] })
    // Never shown as absent or old after the pending value appeared (no flicker back before the replica has it).
    const first = seen.findIndex(s => s.value === INITIAL + 5)
    expect(seen.slice(first).every(s => s.value === INITIAL + 5)).toBe(true)
    stop()
    // A guess that cannot hold (tx.random() is seeded by the timestamp, known only once the call is ordered) is reported corrected.
    const stamped = x.call('draw', {}, { optimistic: true })
    expect(await stamped.local).toMatchObject({ status: 'committed', speculative: true })
    expect(await stamped).toMatchObject({ status: 'committed', speculation: 'corrected' })
    // An abort guessed locally is confirmed; a call that is not optimistic has no local result.
    const short = x.call('transfer', { from: 'opt', to: 'b', amount: 10_000 }, { optimistic: true })
    expect(await short.local).toMatchObject({ status: 'aborted', reason: 'insufficient funds' })
    expect(await short).toMatchObject({ status: 'aborted', speculation: 'confirmed' })
    const plain = x.call('deposit', { to: 'opt', amount: 1 })
    expect(await plain.local).toBeUndefined()
    expect((await plain).speculation).toBeUndefined()
  })

  it('reopens local-first: identity and data come back from the store, snapshot reads answer before the network', async () => {
    const store = new MemoryStore()
    const k = await key()
    const db = await open(store, k.key)
    await db.online
    await db.call('deposit', { to: 'local', amount: 7 })
    await expect.poll(async () => (await db.read(['acct/local'], { consistency: 'snapshot' })).values['acct/local']).toBe(INITIAL + 7)
    await db.close()
    // No genesis or invite this time: the replica kept the genesis, and the network is not needed to read.
    const again = await openDatabase({ name: 'bank', procedures: bank, peers: [], store, privateKey: k.key, createNode: tcpNode })
    dbs.push(again)
    expect(again.id).toBe(k.id)
    expect(again.status().network).toBe('offline')
    expect(again.status().lagMs).toBeLessThan(60_000)
    expect((await again.read(['acct/local'], { consistency: 'snapshot' })).values['acct/local']).toBe(INITIAL + 7)
    const seen: unknown[] = []
    again.subscribe(['acct/local'], v => { seen.push(v['acct/local']) })
    await expect.poll(() => seen).toEqual([INITIAL + 7])
    // Offline, a call waits for its timeout and fails with a named error.
    await expect(again.call('deposit', { to: 'local', amount: 1 }, { timeoutMs: 300 })).rejects.toMatchObject({ name: 'QuorumUnavailableError' })
  })

  it('a refused open (procedures the group does not run) stops the libp2p node it made', async () => {
    const nodes: Array<{ status: string }> = []
    const other = { ...bank, deposit: { ...bank.deposit, run: (tx: Parameters<typeof bank.deposit.run>[0], a: Parameters<typeof bank.deposit.run>[1]) => bank.deposit.run(tx, { ...a, amount: a.amount + 1 }) } }
    const opening = openDatabase({
      name: 'bank', procedures: other, peers: addrs, invite, creator, store: new MemoryStore(), timeoutMs: 5_000,
      createNode: async k => { const n = await tcpNode(k); nodes.push(n); return n }
    })
    // The message gives a way out: this app's per-procedure hashes to compare with the relays' (tideline-relay hash --each).
    await expect(opening).rejects.toMatchObject({ name: 'ProcedureHashMismatchError', message: expect.stringMatching(/This peer's: .*deposit [0-9a-f]{12}.*tideline-relay hash --each/) })
    expect(nodes.length).toBeGreaterThan(0)
    // A node left running keeps the process alive and holds its connections to the voters.
    expect(nodes.map(n => n.status)).toEqual(nodes.map(() => 'stopped'))
  })
})
