#!/usr/bin/env node
import '@tideline/net-libp2p'
import { parseArgs } from 'node:util'
import { readFile, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { MEMBER_ROLES, createGenesis, createInvite, decodeSigned, encodeSigned, inviteDigest, verifyGenesis, type MemberRole } from '@tideline/net-libp2p'
import { loadOrCreateIdentity } from './identity.js'
import { jsonLogger } from './log.js'
import { BUILTIN_PROCEDURES, loadRegistry, startRelay } from './relay.js'
import { runDevGroup } from './dev.js'
import type { PartitionSpec } from '@tideline/core'

const USAGE = `tideline-relay <command> [options]   (run as: pnpm relay -- <command> …)

  id       --data DIR                       print this relay's peer id (creates its key)
  hash     [--procedures MODULE] [--each]  print the procedure registry hash (--each: every procedure's too)
  genesis  --data DIR --group NAME --voters ID,ID,… [--procedures MODULE] [--txn-retention-ms MS] [--signed-calls]
           [--partitions JSON] [--out FILE]
                                            sign a group's genesis with DIR's key (the creator); --signed-calls: every call
                                            carries its caller's signature, checked by every replica (tx.caller);
                                            --partitions '{"count":4,"depth":1}': keys split into partitions by scope,
                                            each held by one replica set of the voters (replicas, separator, assign too)
  invite   --data DIR --genesis FILE [--peer ID] [--ttl-hours H] [--role reader|writer|voter|admin] [--name NAME]
                                            a voter signs an invite (bearer unless --peer; role writer unless
                                            --role: a reader only reads, a voter may be voted in, an admin invites)
  run      --data DIR [--genesis FILE] [--procedures MODULE] [--listen MA,…] [--announce MA,…] [--peers MA,…]
           [--http 127.0.0.1:PORT] [--admit ID,…] [--admit-voters ID,…] [--suspect-ms MS] [--suspect-min-ms MS] [--heartbeat-ms MS] [--quiesce-after-ms MS] [--no-entry-hub] [--retain-ms MS] [--observer [--follow P,…]] [--invite TEXT] [--max-groups N] [--max-calls-per-sec N] [--nemesis] [--signal-only] [--max-reservations N] [--exit-with-stdin]
                                            serve as a member of the group until SIGTERM/SIGINT
                                            (--signal-only: no group at all, only WebRTC signalling and circuits for
                                            browser tabs, as for a group whose voters are all tabs; --max-reservations:
                                            most tabs holding a circuit slot at once, default 1024)
                                            (--follow: an observer of a partitioned group that holds those partitions only)
                                            (on SIGTERM a voter hands over to the others first); also hosts every group
                                            added with \`group add\` (kept in DIR/groups, back after a restart)
  group    add --http 127.0.0.1:PORT --genesis FILE [--procedures MODULE] [--invite TEXT] [--observer [--follow P,…]] [--max-calls-per-sec N]
           remove --http 127.0.0.1:PORT --group ID
           list --http 127.0.0.1:PORT
                                            host another group on the running relay of that port, stop hosting one
                                            (a voter hands over first; its store stays on disk), or list them
  revoke   --http 127.0.0.1:PORT [--peer ID,…] [--invite TEXT]
                                            the relay serving that loopback port, a voter, revokes the members and
                                            the invite in its next epoch change (their calls refused, hung up on)
  dev      [--dir DIR] [--base-port P] [--procedures MODULE]
                                            a local 3-relay group (identities, genesis, invite), one command

MODULE: a file whose \`procedures\` or default export is the procedure map; default: ${BUILTIN_PROCEDURES}
(bank transfers and list-append).`

const list = (s: string | undefined): string[] => s === undefined || s === '' ? [] : s.split(',').map(x => x.trim()).filter(x => x !== '')

function need (v: string | undefined, flag: string): string {
  if (v === undefined) throw new UsageError(`missing --${flag}`)
  return v
}

class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** A flag's value as a positive whole number. */
function count (v: string, flag: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${flag} must be a positive whole number, not ${JSON.stringify(v)}`)
  return n
}

/** A flag's value as a positive number of milliseconds. */
function millis (v: string, flag: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} must be a positive number of milliseconds, not ${JSON.stringify(v)}`)
  return n
}

async function main (argv: string[]): Promise<void> {
  const [command, ...rest] = argv[0] === '--' ? argv.slice(1) : argv
  const sub = command === 'group' ? rest[0] : undefined
  const { values } = parseArgs({
    args: command === 'group' ? rest.slice(1) : rest,
    options: {
      data: { type: 'string' },
      group: { type: 'string' },
      voters: { type: 'string' },
      procedures: { type: 'string' },
      out: { type: 'string' },
      genesis: { type: 'string' },
      peer: { type: 'string' },
      'ttl-hours': { type: 'string' },
      listen: { type: 'string' },
      announce: { type: 'string' },
      each: { type: 'boolean' },
      peers: { type: 'string' },
      http: { type: 'string' },
      admit: { type: 'string' },
      'admit-voters': { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      'suspect-ms': { type: 'string' },
      'suspect-min-ms': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'quiesce-after-ms': { type: 'string' },
      'no-entry-hub': { type: 'boolean' },
      'retain-ms': { type: 'string' },
      'txn-retention-ms': { type: 'string' },
      'signed-calls': { type: 'boolean' },
      partitions: { type: 'string' },
      observer: { type: 'boolean' },
      'signal-only': { type: 'boolean' },
      'max-reservations': { type: 'string' },
      follow: { type: 'string' },
      nemesis: { type: 'boolean' },
      invite: { type: 'string' },
      dir: { type: 'string' },
      'exit-with-stdin': { type: 'boolean' },
      'base-port': { type: 'string' },
      'max-groups': { type: 'string' },
      'max-calls-per-sec': { type: 'string' }
    },
    strict: true
  })
  switch (command) {
    case 'id': {
      const { id } = await loadOrCreateIdentity(need(values.data, 'data'))
      process.stdout.write(`${id}\n`)
      return
    }
    case 'hash': {
      // The registry hash as this toolchain sees the procedures (what a genesis pins); with --each, every procedure's too.
      const registry = await loadRegistry(values.procedures)
      process.stdout.write(`${registry.hash}\n`)
      if (values.each === true) for (const p of registry.procedures.values()) process.stdout.write(`  ${p.name} ${p.hash}\n`)
      return
    }
    case 'genesis': {
      const { key } = await loadOrCreateIdentity(need(values.data, 'data'))
      const registry = await loadRegistry(values.procedures)
      const retention = values['txn-retention-ms'] === undefined ? {} : { txnRetentionMs: Math.ceil(millis(values['txn-retention-ms'], 'txn-retention-ms')) }
      const partitions = values.partitions === undefined ? {} : { partitions: partitionSpec(values.partitions) }
      const text = encodeSigned(await createGenesis(key, { groupId: need(values.group, 'group'), voters: list(need(values.voters, 'voters')), registryHash: registry.hash, ...retention, ...(values['signed-calls'] === true ? { signedCalls: true } : {}), ...partitions }))
      if (values.out === undefined) process.stdout.write(`${text}\n`)
      else await writeFile(values.out, `${text}\n`)
      return
    }
    case 'invite': {
      const { key } = await loadOrCreateIdentity(need(values.data, 'data'))
      const genesis = decodeSigned(await readFile(need(values.genesis, 'genesis'), 'utf8'))
      await verifyGenesis(genesis)
      const hours = Number(values['ttl-hours'] ?? '24')
      const role = values.role ?? 'writer'
      if (!(MEMBER_ROLES as readonly string[]).includes(role)) throw new Error(`--role must be one of ${MEMBER_ROLES.join(', ')}`)
      const invite = await createInvite(key, genesis, {
        expiresAt: Date.now() + hours * 3_600_000,
        role: role as MemberRole,
        ...(values.peer === undefined ? {} : { peer: values.peer }),
        ...(values.name === undefined ? {} : { name: values.name })
      })
      process.stdout.write(`${encodeSigned(invite)}\n`)
      return
    }
    case 'run': {
      // A signal-only relay is no member of anything: options about a group it would host make no sense with it.
      if (values['signal-only'] === true) for (const f of ['genesis', 'invite', 'observer', 'follow', 'procedures'] as const) if (values[f] !== undefined) throw new UsageError(`--signal-only hosts no group: --${f} does not go with it`)
      const logger = jsonLogger({})
      const relay = await startRelay({
        dataDir: need(values.data, 'data'),
        ...(values.genesis === undefined ? {} : { genesis: await readFile(values.genesis, 'utf8') }),
        ...(values['max-groups'] === undefined ? {} : { maxGroups: count(values['max-groups'], 'max-groups') }),
        ...(values['max-calls-per-sec'] === undefined ? {} : { maxCallsPerSec: count(values['max-calls-per-sec'], 'max-calls-per-sec') }),
        ...(values.procedures === undefined ? {} : { procedures: values.procedures }),
        ...(values.listen === undefined ? {} : { listen: list(values.listen) }),
        ...(values.announce === undefined ? {} : { announce: list(values.announce) }),
        peers: list(values.peers),
        ...(values.http === undefined ? {} : { http: values.http }),
        admit: list(values.admit),
        admitVoters: list(values['admit-voters']),
        ...(values['suspect-ms'] === undefined ? {} : { suspectMs: millis(values['suspect-ms'], 'suspect-ms') }),
        ...(values['suspect-min-ms'] === undefined ? {} : { suspectMinMs: millis(values['suspect-min-ms'], 'suspect-min-ms') }),
        ...(values['heartbeat-ms'] === undefined ? {} : { heartbeatMs: millis(values['heartbeat-ms'], 'heartbeat-ms') }),
        ...(values['quiesce-after-ms'] === undefined ? {} : { quiesceAfterMs: values['quiesce-after-ms'] === '0' ? 0 : millis(values['quiesce-after-ms'], 'quiesce-after-ms') }),
        ...(values['retain-ms'] === undefined ? {} : { retainMs: millis(values['retain-ms'], 'retain-ms') }),
        ...(values['no-entry-hub'] === true ? { entryHub: false } : {}),
        ...(values['signal-only'] === true ? { signalOnly: true } : {}),
        ...(values['max-reservations'] === undefined ? {} : { maxReservations: count(values['max-reservations'], 'max-reservations') }),
        ...(values.observer === true ? { observer: true } : {}),
        ...(values.follow === undefined ? {} : { follow: followed(values.follow, values.observer === true) }),
        ...(values.nemesis === true ? { nemesis: true } : {}),
        ...(values.invite === undefined ? {} : { invite: values.invite }),
        logger
      })
      const shutdown = (signal: string): void => {
        logger('signal', { signal })
        // SIGTERM hands over first (the group continues without a stall). SIGINT (Ctrl-C reaches
        // every process of a terminal's group at once) and a dead supervisor just stop.
        const stop = signal === 'SIGTERM' ? relay.leaveAndStop() : relay.stop()
        stop.then(() => { process.exit(0) }, (err: unknown) => { logger('stop-failed', { error: String(err) }, 'error'); process.exit(1) })
      }
      process.once('SIGTERM', () => { shutdown('SIGTERM') })
      process.once('SIGINT', () => { shutdown('SIGINT') })
      // A supervisor (the dev group, tests) holds our stdin: when it dies, so do we.
      if (values['exit-with-stdin'] === true) {
        process.stdin.on('end', () => { shutdown('stdin-closed') })
        process.stdin.resume()
      }
      return
    }
    case 'revoke': {
      const targets = list(values.peer).map(id => ({ kind: 'peer', id }))
      if (values.invite !== undefined) targets.push({ kind: 'invite', id: await inviteDigest(decodeSigned(values.invite)) })
      if (targets.length === 0) throw new UsageError('revoke needs --peer ID,… or --invite TEXT (or both)')
      const res = await fetch(`http://${need(values.http, 'http')}/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(targets) })
      const body = await res.json() as { epoch?: number, error?: { name: string, message: string } }
      if (!res.ok || body.epoch === undefined) throw new Error(`revoke refused: ${body.error?.name ?? res.status} ${body.error?.message ?? ''}`)
      process.stdout.write(`revoked ${targets.map(t => `${t.kind} ${t.id}`).join(', ')} from epoch ${body.epoch}\n`)
      return
    }
    case 'group': {
      const base = `http://${need(values.http, 'http')}/groups`
      let res: Response
      if (sub === 'add') {
        const body = {
          genesis: (await readFile(need(values.genesis, 'genesis'), 'utf8')).trim(),
          ...(values.procedures === undefined ? {} : { procedures: resolve(values.procedures) }),
          ...(values.invite === undefined ? {} : { invite: values.invite }),
          ...(values.observer === true ? { observer: true } : {}),
          ...(values.follow === undefined ? {} : { follow: followed(values.follow, values.observer === true) }),
          ...(values['max-calls-per-sec'] === undefined ? {} : { maxCallsPerSec: count(values['max-calls-per-sec'], 'max-calls-per-sec') })
        }
        res = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      } else if (sub === 'remove') {
        res = await fetch(`${base}/${encodeURIComponent(need(values.group, 'group'))}`, { method: 'DELETE' })
      } else if (sub === 'list') {
        res = await fetch(base)
      } else {
        throw new UsageError(`group wants add, remove or list, not ${JSON.stringify(sub ?? '')}`)
      }
      const text = await res.text()
      if (!res.ok) throw new Error(`group ${sub} refused (${res.status}): ${text}`)
      process.stdout.write(`${text}\n`)
      return
    }
    case 'dev': {
      await runDevGroup({
        dir: values.dir ?? '.tideline/dev',
        basePort: Number(values['base-port'] ?? '4401'),
        ...(values.procedures === undefined ? {} : { procedures: values.procedures })
      })
      return
    }
    default:
      throw new UsageError(command === undefined ? 'no command' : `unknown command ${JSON.stringify(command)}`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error
  if (e.name === 'UsageError' || e.name === 'TypeError' && /parseArgs|argument|option/i.test(e.message)) {
    process.stderr.write(`${e.message}\n\n${USAGE}\n`)
    process.exit(2)
  }
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level: 'error', event: 'fatal', name: e.name, error: e.message })}\n`)
  process.exit(1)
})

/** `--partitions` as JSON (checked by createGenesis: InvalidCredentialError naming what is wrong). */
function partitionSpec (text: string): PartitionSpec {
  try {
    return JSON.parse(text) as PartitionSpec
  } catch (err) {
    throw new Error(`--partitions must be JSON such as '{"count":4,"depth":1}': ${(err as Error).message}`)
  }
}

/** `--follow 0,3`: the partitions an observer relay holds (a candidate for voter follows them all). */
function followed (text: string, observer: boolean): number[] {
  if (!observer) throw new Error('--follow is for an observer (--observer): a relay that may be voted in holds every partition it is placed on')
  const parts = list(text).map(Number)
  if (parts.length === 0 || parts.some(p => !Number.isSafeInteger(p) || p < 0)) throw new Error(`--follow takes partition numbers separated by commas, got ${JSON.stringify(text)}`)
  return [...new Set(parts)].sort((a, b) => a - b)
}
