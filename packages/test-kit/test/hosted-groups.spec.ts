import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { NetClient, createGenesis, createInvite, encodeSigned, type SignedGenesis } from '@tideline/net-libp2p'
import type { SubmitRequest } from '@tideline/core'
import { nodeDecisionSigner } from '@tideline/relay'
import { workloadRegistry } from '@tideline/workloads'
import { startLocalGroup, type ProcessGroup, type RelayProcess } from '../src/local-group.js'
import { waitUntil } from '../src/workload.js'

// Many groups on one relay process: three relay processes host their main group and add two more over
// their HTTP port (POST /groups); each group commits, keeps its own state and metrics; one relay stops
// hosting a group (DELETE /groups/<id>: it hands over and the group goes on); a restarted relay hosts
// its added groups again.
const hash = (p: string): string => workloadRegistry.procedures.get(p)?.hash ?? ''
const TIMEOUTS = { attemptTimeoutMs: 1_500, timeoutMs: 8_000 }

async function post (relay: RelayProcess, path: string, body: unknown, type = 'application/json'): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`${relay.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

async function groupsOf (relay: RelayProcess): Promise<string[]> {
  const rows = await (await fetch(`${relay.httpUrl}/groups`)).json() as Array<{ group: string }>
  return rows.map(r => r.group).sort()
}

describe('a relay process hosting several groups', () => {
  let group: ProcessGroup | undefined
  const clients: NetClient[] = []
  const hosted: Array<{ id: string, genesis: SignedGenesis }> = []
  beforeAll(async () => {
    group = await startLocalGroup({ relays: 3, groupId: 'main-group' })
    const creator = await generateKeyPair('Ed25519')
    for (const id of ['team-a', 'team-b']) hosted.push({ id, genesis: await createGenesis(creator, { groupId: id, voters: group.relays.map(r => r.id), registryHash: workloadRegistry.hash }) })
  }, 120_000)
  afterAll(async () => {
    for (const c of clients) await c.stop()
    await group?.stop()
  }, 60_000)

  /** A client of a hosted group, through an invite its first voter signs. */
  async function client (g: { id: string, genesis: SignedGenesis }, home: number): Promise<NetClient> {
    const relays = (group as ProcessGroup).relays
    const invite = await createInvite((relays[0] as RelayProcess).key, g.genesis, { expiresAt: Date.now() + 3_600_000 })
    const privateKey = await generateKeyPair('Ed25519')
    const c = await NetClient.start({ privateKey, signer: nodeDecisionSigner(privateKey), voters: relays.map(r => r.tcp), invite, home, ...TIMEOUTS })
    clients.push(c)
    return c
  }

  it('adds groups at run time; each commits with its own state, and /metrics labels each hosted group', async () => {
    const relays = (group as ProcessGroup).relays
    for (const r of relays) {
      for (const g of hosted) {
        const res = await post(r, '/groups', { genesis: encodeSigned(g.genesis) })
        expect(res.status).toBe(201)
        expect(res.body).toMatchObject({ group: g.id, role: 'voter', main: false })
      }
      expect(await groupsOf(r)).toEqual(['main-group', 'team-a', 'team-b'])
    }
    const transfer = (from: string, to: string, amount: number): Omit<SubmitRequest, 'clientTxnId'> => ({ procedure: 'transfer', hash: hash('transfer'), args: { from, to, amount } })
    const a = await client(hosted[0] as { id: string, genesis: SignedGenesis }, 0)
    const b = await client(hosted[1] as { id: string, genesis: SignedGenesis }, 1)
    const main = await (group as ProcessGroup).startClient(TIMEOUTS, { home: 2 })
    clients.push(main)
    expect((await a.call({ clientTxnId: 'a-1', ...transfer('a0', 'a1', 7) })).status).toBe('committed')
    expect((await b.call({ clientTxnId: 'b-1', ...transfer('a0', 'a2', 3) })).status).toBe('committed')
    // Each group's state is its own: the same keys, three different histories (an account never written reads as absent).
    expect((await a.read(['acct/a0', 'acct/a1', 'acct/a2'])).values).toEqual({ 'acct/a0': 93, 'acct/a1': 107 })
    expect((await b.read(['acct/a0', 'acct/a1', 'acct/a2'])).values).toEqual({ 'acct/a0': 97, 'acct/a2': 103 })
    expect((await main.read(['acct/a0', 'acct/a1', 'acct/a2'])).values).toEqual({})
    // The same client id in another group is another call (exactly-once is per group).
    expect((await b.call({ clientTxnId: 'a-1', ...transfer('a0', 'a1', 1) })).status).toBe('committed')
    // A relay evaluates each group's calls as its watermark passes them (the home voter answered first).
    const metricsText = async (): Promise<string> => (await fetch(`${(relays[0] as RelayProcess).httpUrl}/metrics`)).text()
    await expect.poll(metricsText, { timeout: 10_000 }).toMatch(/^tideline_txns_evaluated_total\{group="team-b"\} 2$/m)
    const metrics = await metricsText()
    expect(metrics).toMatch(/^tideline_txns_evaluated_total \d+$/m)
    expect(metrics).toMatch(/^tideline_txns_evaluated_total\{group="team-a"\} 1$/m)
    expect(metrics).toMatch(/^tideline_sync_phase\{group="team-b",phase="live"\} 1$/m)
    expect(metrics.match(/^# TYPE tideline_txns_evaluated_total /gm)).toHaveLength(1)
  }, 90_000)

  it('refuses a malformed, duplicate or non-JSON add with a named error, and hosts on', async () => {
    const r = (group as ProcessGroup).relays[0] as RelayProcess
    expect((await post(r, '/groups', { genesis: encodeSigned((hosted[0] as { genesis: SignedGenesis }).genesis) })).status).toBe(409)
    const junk = await post(r, '/groups', { genesis: 'not a genesis' })
    expect(junk.status).toBe(400)
    expect(junk.body).toMatchObject({ error: { name: 'InvalidCredentialError' } })
    expect((await post(r, '/groups', { genesis: 42 })).status).toBe(400)
    expect((await post(r, '/groups', '{"genesis":', 'application/json')).status).toBe(400)
    expect((await post(r, '/groups', 'genesis=x', 'application/x-www-form-urlencoded')).status).toBe(415)
    expect((await fetch(`${r.httpUrl}/groups/nope`, { method: 'DELETE' })).status).toBe(404)
    expect(await groupsOf(r)).toEqual(['main-group', 'team-a', 'team-b'])
    expect((await fetch(`${r.httpUrl}/healthz`)).status).toBe(200)
  })

  it('a group added with its own call limit refuses calls beyond it with RateLimitedError, at once; the other groups are not limited', async () => {
    const relays = (group as ProcessGroup).relays
    const creator = await generateKeyPair('Ed25519')
    const limited = { id: 'team-c', genesis: await createGenesis(creator, { groupId: 'team-c', voters: relays.map(r => r.id), registryHash: workloadRegistry.hash }) }
    for (const r of relays) expect((await post(r, '/groups', { genesis: encodeSigned(limited.genesis), maxCallsPerSec: 2 })).status).toBe(201)
    expect((await post(relays[0] as RelayProcess, '/groups', { genesis: encodeSigned(limited.genesis), maxCallsPerSec: -1 })).body).toMatchObject({ error: { name: 'TypeError' } })
    const burst = async (c: NetClient, prefix: string): Promise<string[]> => (await Promise.allSettled(Array.from({ length: 6 }, async (_, i) =>
      c.call({ clientTxnId: `${prefix}-${i}`, procedure: 'transfer', hash: hash('transfer'), args: { from: `a${i}`, to: 'a9', amount: 1 } })))).map(r => r.status === 'fulfilled' ? r.value.status : (r.reason as Error).name)
    const outcomes = await burst(await client(limited, 0), 'c')
    // Its home voter holds 2 calls a second: the other 4 are refused, not queued or timed out.
    expect(outcomes.filter(o => o === 'committed')).toHaveLength(2)
    expect(outcomes.filter(o => o === 'RateLimitedError')).toHaveLength(4)
    expect(await burst(await client(hosted[0] as { id: string, genesis: SignedGenesis }, 0), 'unlimited')).toEqual(Array.from({ length: 6 }, () => 'committed'))
  }, 60_000)

  it('a relay that stops hosting a group hands over: the group goes on with the other two', async () => {
    const relays = (group as ProcessGroup).relays
    const r = relays[2] as RelayProcess
    const res = await fetch(`${r.httpUrl}/groups/team-b`, { method: 'DELETE' })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ group: 'team-b', left: true })
    expect(await groupsOf(r)).toEqual(['main-group', 'team-a', 'team-c'])
    const b = await client(hosted[1] as { id: string, genesis: SignedGenesis }, 0)
    expect((await b.call({ clientTxnId: 'b-2', procedure: 'transfer', hash: hash('transfer'), args: { from: 'a2', to: 'a0', amount: 3 } })).status).toBe('committed')
    const rows = await (await fetch(`${(relays[0] as RelayProcess).httpUrl}/groups`)).json() as Array<{ group: string, voters: string[] }>
    expect([...rows.find(x => x.group === 'team-b')?.voters ?? []].sort((x, y) => x < y ? -1 : 1)).toEqual([relays[0]?.id as string, relays[1]?.id as string].sort((x, y) => x < y ? -1 : 1))
  }, 60_000)

  it('a restarted relay hosts the groups it had added, and they catch up', async () => {
    const relays = (group as ProcessGroup).relays
    const r = relays[1] as RelayProcess
    await r.shutdown()
    await r.start()
    expect(await groupsOf(r)).toEqual(['main-group', 'team-a', 'team-b', 'team-c'])
    const a = await client(hosted[0] as { id: string, genesis: SignedGenesis }, 1)
    expect((await a.call({ clientTxnId: 'a-2', procedure: 'transfer', hash: hash('transfer'), args: { from: 'a1', to: 'a0', amount: 7 } })).status).toBe('committed')
    // It evaluates every call of team-a, those made while it was down too: as many as a relay that stayed up.
    const evaluated = async (relay: RelayProcess): Promise<number | undefined> => ((await (await fetch(`${relay.httpUrl}/groups`)).json()) as Array<{ group: string, evaluated: number }>).find(x => x.group === 'team-a')?.evaluated
    await waitUntil('the restarted relay evaluated team-a\'s calls', async () => {
      const [mine, theirs] = await Promise.all([evaluated(r), evaluated(relays[0] as RelayProcess)])
      return mine !== undefined && mine === theirs && mine >= 8
    }, 20_000)
  }, 90_000)
})
