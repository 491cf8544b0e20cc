import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NetClient, inviteDigest } from '@tideline/net-libp2p'
import { workloadRegistry } from '@tideline/workloads'
import { startLocalGroup, type ProcessGroup, type RelayProcess } from '../src/local-group.js'
import { waitQuiescent, waitUntil } from '../src/workload.js'

// Revocation with real relay processes, in a group of signed calls (so every replica refuses a revoked
// caller too, not only the voters it reaches): an admin revokes a member and the bearer invite it came in
// with; within that one epoch change the member is hung up on and its calls refused, and the invite admits
// no one afterwards. Then an operator revokes another invite through a relay's loopback HTTP port.
const execFileAsync = promisify(execFile)
const CLI = join(dirname(createRequire(import.meta.url).resolve('@tideline/relay/package.json')), 'src', 'cli.ts')
const hash = (p: string): string => workloadRegistry.procedures.get(p)?.hash ?? ''
const TIMEOUTS = { attemptTimeoutMs: 1_500, timeoutMs: 6_000 }
const note = (k: string): { procedure: string, hash: string, args: { k: string } } => ({ procedure: 'signNote', hash: hash('signNote'), args: { k } })

async function counter (relays: readonly RelayProcess[], event: string): Promise<number> {
  const each = await Promise.all(relays.map(async r => (await r.metrics()).get(`tideline_events_total{event="${event}"}`) ?? 0))
  return each.reduce((a, b) => a + b, 0)
}

const connectedTo = (c: NetClient, relays: readonly RelayProcess[]): number =>
  new Set(c.node.getConnections().map(x => x.remotePeer.toString()).filter(p => relays.some(r => r.id === p))).size

describe('revocation', () => {
  let group: ProcessGroup | undefined
  const clients: NetClient[] = []
  beforeAll(async () => { group = await startLocalGroup({ relays: 3, groupId: 'revoke-test', signedCalls: true }) }, 120_000)
  afterAll(async () => {
    for (const c of clients) await c.stop().catch(() => {})
    await group?.stop()
  }, 60_000)

  it('an admin revokes a member and its invite: hung up on and refused within that epoch change; the invite admits no one after', async () => {
    const g = group as ProcessGroup
    const admin = await g.startClient(TIMEOUTS, { invite: await g.createInvite({ role: 'admin', name: 'ada' }) })
    const shared = await g.createInvite({ role: 'writer' })
    const mallory = await g.startClient(TIMEOUTS, { invite: shared })
    const bob = await g.startClient(TIMEOUTS, { invite: shared })
    const writer = await g.startClient(TIMEOUTS)
    clients.push(admin, mallory, bob, writer)
    expect(await mallory.call({ clientTxnId: 'm-1', ...note('m1') })).toMatchObject({ status: 'committed', value: mallory.id })
    // A writer may not revoke.
    await expect(writer.revoke([{ kind: 'peer', id: mallory.id }])).rejects.toMatchObject({ name: 'PermissionDeniedError' })
    const before = (await (g.relays[0] as RelayProcess).health()).epoch

    const epoch = await admin.revoke([{ kind: 'peer', id: mallory.id }, { kind: 'invite', id: await inviteDigest(shared) }])
    // One epoch change holds both.
    expect(epoch).toBe(before + 1)
    await waitUntil('every relay installed the revocation', async () => (await Promise.all(g.relays.map(async r => r.health()))).every(h => h.epoch >= epoch && h.revoked === 2), 15_000)
    // Hung up on by every relay it was connected to; it may dial again, but joins are refused and the grace hangs up.
    await waitUntil('mallory and bob are cut off', async () => connectedTo(mallory, g.relays) + connectedTo(bob, g.relays) === 0, 15_000)
    expect(await counter(g.relays, 'hung-up-revoked')).toBeGreaterThanOrEqual(1)
    // Their calls are refused with a named error by the voter they reach, and take no effect.
    await expect(mallory.call({ clientTxnId: 'm-2', ...note('m2') })).rejects.toMatchObject({ name: 'PermissionDeniedError', message: expect.stringContaining('revoked') })
    await expect(bob.call({ clientTxnId: 'b-2', ...note('b2') })).rejects.toMatchObject({ name: 'PermissionDeniedError', message: expect.stringContaining('revoked') })
    // The invite admits no one now: a fresh peer presenting it is refused by every relay.
    await expect(g.startClient(TIMEOUTS, { invite: shared })).rejects.toMatchObject({ name: 'NotMemberError' })
    expect(await counter(g.relays, 'join-refused')).toBeGreaterThanOrEqual(3)
    // The others carry on.
    expect(await writer.call({ clientTxnId: 'w-1', ...note('w1') })).toMatchObject({ status: 'committed', value: writer.id })
    await waitQuiescent(g.relays, 30_000)
    const seen = await Promise.all(g.relays.map(async r => ({ h: await r.health(), v: (await writer.read(['note/m1', 'note/m2', 'note/b2', 'note/w1'], 'snapshot', { voter: r.id })).values })))
    for (const { v } of seen) expect(v).toEqual({ 'note/m1': mallory.id, 'note/w1': writer.id })
    expect(new Set(seen.map(s => s.h.digest)).size).toBe(1)
  }, 90_000)

  it('a relay\'s operator revokes an invite through its loopback HTTP port; a malformed request is refused with a named error', async () => {
    const g = group as ProcessGroup
    const relay = g.relays[1] as RelayProcess
    const json = { 'content-type': 'application/json' }
    // Not JSON (what a web page can send across origins without a preflight): refused.
    expect((await fetch(`${relay.httpUrl}/revoke`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '[]' })).status).toBe(415)
    const bad = await fetch(`${relay.httpUrl}/revoke`, { method: 'POST', headers: json, body: JSON.stringify([{ kind: 'invite', id: 'not-a-digest' }]) })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ error: { name: 'InvalidArgumentError' } })
    const invite = await g.createInvite({ role: 'reader' })
    const reader = await g.startClient(TIMEOUTS, { invite })
    clients.push(reader)
    // It reads (what the first test's writer wrote).
    expect(Object.keys((await reader.read(['note/w1'])).values)).toEqual(['note/w1'])
    const res = await fetch(`${relay.httpUrl}/revoke`, { method: 'POST', headers: json, body: JSON.stringify([{ kind: 'invite', id: await inviteDigest(invite) }]) })
    expect(res.status).toBe(200)
    const { epoch } = await res.json() as { epoch: number }
    await waitUntil('every relay installed it', async () => (await Promise.all(g.relays.map(async r => r.health()))).every(h => h.epoch >= epoch && h.revoked === 3), 15_000)
    await waitUntil('the reader is cut off', async () => connectedTo(reader, g.relays) === 0, 15_000)
    await expect(g.startClient(TIMEOUTS, { invite })).rejects.toMatchObject({ name: 'NotMemberError' })
    // The same from a shell: `tideline-relay revoke` posts to the relay's port and prints the epoch.
    const other = await g.startClient(TIMEOUTS)
    clients.push(other)
    const { stdout } = await execFileAsync(process.execPath, ['--conditions=@tideline/source', '--import', 'tsx', CLI, 'revoke', '--http', relay.httpUrl.replace(/^http:\/\//, ''), '--peer', other.id])
    expect(stdout).toMatch(new RegExp(`^revoked peer ${other.id} from epoch \\d+\\n$`))
    await waitUntil('every relay installed it', async () => (await Promise.all(g.relays.map(async r => r.health()))).every(h => h.revoked === 4), 15_000)
    await expect(other.call({ clientTxnId: 'o-1', ...note('o1') })).rejects.toMatchObject({ name: 'PermissionDeniedError' })
  }, 90_000)
})
