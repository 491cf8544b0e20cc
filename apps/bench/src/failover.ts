import { NetClient } from '@tideline/net-libp2p'
import { Recorder, finals, runWorkload, startLocalGroup, waitQuiescent, waitUntil as waitFor, type RelayProcess } from '@tideline/test-kit'
import { checkHistory, formatViolation } from '@tideline/sim'
import { quantile } from './closed-loop.js'

export interface FailoverOptions {
  readonly runs: number
  readonly clients: number
}

export interface FailoverRun {
  readonly victim: number
  /** Seconds from the kill to the first commit of a call made after it. */
  readonly resumeS: number
  /** Seconds from the kill until the survivors' epoch left the victim out. */
  readonly votedOutS: number
  /** Seconds from the restart until the victim was a voter again. */
  readonly rejoinS: number
  readonly epoch: number
  readonly committedDuringRun: number
}

export interface FailoverResult {
  readonly runs: FailoverRun[]
  readonly resumeP50S: number
  readonly resumeMaxS: number
  readonly violations: string[]
  readonly committed: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * `pnpm bench failover`: 3 relay processes (default failure detector, 2 s)
 * under a closed-loop checked workload; each run kills one relay with
 * SIGKILL, measures how long until calls made after the kill commit again
 * (the survivors vote it out), restarts it and waits until it is voted back
 * in. The whole history is then checked by the simulator's checker.
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
    const voters = async (r: RelayProcess): Promise<readonly string[]> => (await r.health()).voters
    for (let run = 0; run < o.runs; run++) {
      const victim = group.relays[run % group.relays.length] as RelayProcess
      const others = group.relays.filter(r => r !== victim)
      const okBefore = rec.count('ok')
      let done = false
      const load = runWorkload(clients, rec, 0, `run${run}`, { until: () => done })
      await sleep(2_000)
      const killedAt = rec.now()
      await victim.kill9()
      const votedOutMs = await waitFor('survivors vote the dead relay out', async () => !(await voters(others[0] as RelayProcess)).includes(victim.id), 30_000)
      // Calls made after the kill get timestamps above the dead relay's last promise: they commit only in the new epoch.
      const afterKill = (): number[] => rec.ops.filter(op => op.outcome === 'ok' && op.invokeTime > killedAt && op.completeTime !== undefined).map(op => op.completeTime as number)
      await waitFor('a call made after the kill commits', async () => afterKill().length > 0, 30_000)
      const firstCommit = Math.min(...afterKill())
      await victim.start()
      const rejoinMs = await waitFor('the restarted relay is voted back in', async () => (await Promise.all(group.relays.map(voters))).every(v => v.length === 3), 30_000)
      done = true
      await load
      runs.push({ victim: group.relays.indexOf(victim), resumeS: (firstCommit - killedAt) / 1000, votedOutS: votedOutMs / 1000, rejoinS: rejoinMs / 1000, epoch: (await victim.health()).epoch, committedDuringRun: rec.count('ok') - okBefore })
    }
    await waitQuiescent(group.relays, 60_000)
    const f = await finals(clients[0] as NetClient, group.relays)
    const violations = checkHistory(rec.history(f)).map(formatViolation)
    if (new Set(f.map(x => x.resultDigest)).size !== 1) violations.push(`replicas disagree on the result digest: ${f.map(x => `${x.peer.slice(-6)} ${x.resultDigest}`).join(', ')}`)
    violations.push(...rec.unexpected)
    const resumes = runs.map(r => r.resumeS).sort((a, b) => a - b)
    return { runs, resumeP50S: quantile(resumes, 0.5), resumeMaxS: Math.max(...resumes), violations, committed: rec.count('ok') }
  } finally {
    for (const c of clients) await c.stop().catch(() => {})
    await group.stop()
  }
}
