import { NetClient } from '@tideline/net-libp2p'
import { Recorder, finals, runWorkload, startLocalGroup, waitQuiescent, waitUntil as waitFor, type RelayProcess } from '@tideline/test-kit'
import { checkHistory, formatViolation, simRegistry } from '@tideline/sim'
import { quantile } from './closed-loop.js'

export interface FailoverOptions {
  /** Fault runs: kills and pauses alternating (kill first). */
  readonly runs: number
  readonly clients: number
  /** Before the faults: this long at full load with no fault, counting epoch changes (0: skip). */
  readonly calmSeconds: number
  /** Closed loops of the calm phase, spread over the clients. */
  readonly calmLoops: number
}

export type FaultKind = 'kill' | 'pause'

export interface FailoverRun {
  readonly victim: number
  readonly fault: FaultKind
  /** Seconds from the fault to the first commit of a call made after it. */
  readonly resumeS: number
  /** Seconds from the fault until the survivors' epoch left the victim out (polled over HTTP). */
  readonly votedOutS: number
  /** Seconds from the fault to the first epoch-change proposal, and to the first survivor installing the new epoch (their logs). */
  readonly proposedS: number
  readonly installedS: number
  /** Seconds from the restart (kill) or SIGCONT (pause) until the victim was a voter again. */
  readonly rejoinS: number
  readonly epoch: number
  readonly committedDuringRun: number
}

export interface CalmResult {
  readonly seconds: number
  readonly loops: number
  readonly txns: number
  readonly txnPerSec: number
  /** Epochs installed during the calm phase (no fault: should be 0). */
  readonly epochChanges: number
  /** Epoch changes proposed by any relay during it (counter rc-proposed), and stalls relays noticed in themselves (own-stall). */
  readonly proposals: number
  readonly ownStalls: number
}

export interface FailoverResult {
  readonly calm: CalmResult | undefined
  readonly runs: FailoverRun[]
  readonly resumeP50S: number
  readonly resumeMaxS: number
  readonly violations: string[]
  readonly committed: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * `pnpm bench failover`: 3 relay processes (default failure detector)
 * under a closed-loop checked workload. First, optionally, a calm phase at
 * full load with no fault, counting epoch changes (false alarms). Then
 * each run either kills one relay (SIGKILL) or pauses it (SIGSTOP),
 * measures how long until calls made after the fault commit again (the
 * survivors vote it out), restarts it (or SIGCONTs it) and waits until it
 * is voted back in. The whole history of the fault runs is then checked by
 * the simulator's checker.
 */
export async function benchFailover (o: FailoverOptions): Promise<FailoverResult> {
  const group = await startLocalGroup({ relays: 3, groupId: 'bench-failover' })
  const clients: NetClient[] = []
  const rec = new Recorder()
  const runs: FailoverRun[] = []
  try {
    for (let i = 0; i < o.clients; i++) {
      clients.push(await group.startClient({ attemptTimeoutMs: 1_000, timeoutMs: 15_000 }))
    }
    const calm = o.calmSeconds > 0 ? await calmPhase(group.relays, clients, o.calmSeconds, o.calmLoops) : undefined
    const voters = async (r: RelayProcess): Promise<readonly string[]> => (await r.health()).voters
    for (let run = 0; run < o.runs; run++) {
      const victim = group.relays[run % group.relays.length] as RelayProcess
      const fault: FaultKind = run % 2 === 0 ? 'kill' : 'pause'
      const others = group.relays.filter(r => r !== victim)
      const okBefore = rec.count('ok')
      let done = false
      const load = runWorkload(clients, rec, 0, `run${run}`, { until: () => done })
      await sleep(2_000)
      const faultAt = rec.now()
      const faultWall = Date.now()
      if (fault === 'kill') await victim.kill9()
      else victim.pause()
      const votedOutMs = await waitFor('survivors vote the relay out', async () => !(await voters(others[0] as RelayProcess)).includes(victim.id), 30_000)
      // Calls made after the fault get timestamps above the victim's last promise: they commit only in the new epoch.
      const afterFault = (): number[] => rec.ops.filter(op => op.outcome === 'ok' && op.invokeTime > faultAt && op.completeTime !== undefined).map(op => op.completeTime as number)
      await waitFor('a call made after the fault commits', async () => afterFault().length > 0, 30_000)
      const firstCommit = Math.min(...afterFault())
      if (fault === 'kill') await victim.start()
      else victim.cont()
      const rejoinMs = await waitFor('the relay is voted back in', async () => (await Promise.all(group.relays.map(voters))).every(v => v.length === 3), 30_000)
      done = true
      await load
      runs.push({ victim: group.relays.indexOf(victim), fault, resumeS: (firstCommit - faultAt) / 1000, votedOutS: votedOutMs / 1000, proposedS: firstLogged(others, 'rc-propose', faultWall), installedS: firstLogged(others, 'rc-installed', faultWall), rejoinS: rejoinMs / 1000, epoch: (await victim.health()).epoch, committedDuringRun: rec.count('ok') - okBefore })
    }
    await waitQuiescent(group.relays, 60_000)
    const f = await finals(clients[0] as NetClient, group.relays)
    const violations = checkHistory(rec.history(f)).map(formatViolation)
    if (new Set(f.map(x => x.resultDigest)).size !== 1) violations.push(`replicas disagree on the result digest: ${f.map(x => `${x.peer.slice(-6)} ${x.resultDigest}`).join(', ')}`)
    violations.push(...rec.unexpected)
    const resumes = runs.map(r => r.resumeS).sort((a, b) => a - b)
    return { calm, runs, resumeP50S: quantile(resumes, 0.5), resumeMaxS: Math.max(...resumes), violations, committed: rec.count('ok') }
  } finally {
    // A relay left paused would never see SIGTERM.
    for (const r of group.relays) r.cont()
    for (const c of clients) await c.stop().catch(() => {})
    await group.stop()
  }
}

/**
 * Full load and no fault: `loops` closed-loop 2-key transfers (as `bench
 * net`) over accounts of their own, so the checked history of the fault runs
 * is not touched. Counts the epochs installed meanwhile: each is a false
 * alarm of the failure detector.
 */
async function calmPhase (relays: readonly RelayProcess[], clients: readonly NetClient[], seconds: number, loops: number): Promise<CalmResult> {
  const counter = async (name: string): Promise<number> => (await Promise.all(relays.map(async r => (await r.metrics()).get(name) ?? 0))).reduce((a, b) => a + b, 0)
  const epochBefore = (await (relays[0] as RelayProcess).health()).epoch
  const proposedBefore = await counter('tideline_events_total{event="rc-proposed"}')
  const stallsBefore = await counter('tideline_events_total{event="own-stall"}')
  const hash = simRegistry.procedures.get('transfer')?.hash ?? ''
  const end = performance.now() + seconds * 1000
  let txns = 0
  await Promise.all(Array.from({ length: loops }, async (_, i) => {
    const client = clients[i % clients.length] as NetClient
    for (let n = 0; performance.now() < end; n++) {
      const from = Math.floor(Math.random() * 10_000)
      const to = (from + 1 + Math.floor(Math.random() * 9_999)) % 10_000
      try {
        await client.call({ clientTxnId: `calm${i}-${n}`, procedure: 'transfer', hash, args: { from: `calm/a${from}`, to: `calm/a${to}`, amount: 1 } })
        txns++
      } catch {
        // A failed call is load all the same; the fault runs' history is what gets checked.
      }
    }
  }))
  const epochAfter = (await (relays[0] as RelayProcess).health()).epoch
  return { seconds, loops, txns, txnPerSec: txns / seconds, epochChanges: epochAfter - epochBefore, proposals: await counter('tideline_events_total{event="rc-proposed"}') - proposedBefore, ownStalls: await counter('tideline_events_total{event="own-stall"}') - stallsBefore }
}

/** Seconds from `since` (wall clock) to the first `event` any of `relays` logged after it (NaN: none). */
function firstLogged (relays: readonly RelayProcess[], event: string, since: number): number {
  let first = Infinity
  for (const r of relays) {
    for (const line of r.logs) {
      if (!line.includes(`"${event}"`)) continue
      try {
        const e = JSON.parse(line) as { ts?: string, event?: string }
        const at = e.event === event && e.ts !== undefined ? Date.parse(e.ts) : Number.NaN
        if (at >= since && at < first) first = at
      } catch {
        // not a log line
      }
    }
  }
  return first === Infinity ? Number.NaN : (first - since) / 1000
}
