import { execFile } from 'node:child_process'
import { mkdir, open, readFile, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { NetClient } from '@tideline/net-libp2p'
import { Recorder, damageRelayStore, finals, healthOrNone, runWorkload, startLocalGroup, waitQuiescent, waitUntil, type DiskDamage, type RelayProcess } from '@tideline/test-kit'
import { checkHistory, formatViolation } from '@tideline/sim'

/** The faults, applied in turn to one relay at a time (a majority is always whole). */
export const FAULT_KINDS = ['kill', 'pause', 'clock-jump', 'clock-skew', 'partition', 'one-way', 'slow-link', 'corrupt', 'disk-full'] as const
export type FaultKind = typeof FAULT_KINDS[number]

export interface NemesisOptions {
  readonly minutes: number
  readonly clients: number
  /** Quiet time under load between one fault's healing and the next fault (a soak spaces them out). @default 500 */
  readonly quietMs?: number
  /** Called with a line as each fault ends. */
  readonly progress?: (line: string) => void
}

export interface ResourceSample {
  /** Each relay's resident memory (VmRSS) and data directory size, in bytes. */
  readonly rss: number[]
  readonly disk: number[]
  /** The same without LevelDB's write-ahead log (`*.log`: up to its 4 MiB write buffer, emptied at each flush), the part that would show garbage piling up. */
  readonly tables: number[]
  /** Each relay's store records (values, batches, run records, exactly-once records): what GC bounds, apart from the files. */
  readonly records: number[]
}

export interface NemesisResult {
  readonly faults: Record<FaultKind, number>
  readonly txns: number
  readonly committed: number
  readonly violations: string[]
  /** The longest time no call completed (any client), over the whole run. */
  readonly maxStallS: number
  readonly minute1: ResourceSample | undefined
  readonly end: ResourceSample
}

const HISTORY_KEPT_MS = 10_000
const RECORDS_KEPT_MS = 30_000
/**
 * The group's clock-skew allowance for exactly-once records (GroupConfig.txnSkewMs): records are
 * kept their retention plus this, so with the default (60 s) they take 100 s to reach their steady
 * number, past minute 1. 15 s still covers the clock jumps (up to 10 s).
 */
const RECORDS_SKEW_MS = 15_000
const execFileAsync = promisify(execFile)
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const between = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1))

/**
 * `pnpm nemesis`: three real relay processes (`--nemesis`) under the checked
 * workload (bank transfers, list-append, strict reads) from start to end,
 * with faults applied to the real processes in turn: kill -9 and restart,
 * SIGSTOP/SIGCONT, clock jumps (seconds, forward or back) and skew (within
 * the group's tolerance), a relay cut from the others both ways, cut one
 * way, slow links, a record of its store damaged on disk while it is down
 * (a value, an exactly-once record or a batch; a bit flipped, torn, or
 * another record's bytes), and its store's filesystem filled up (it stops,
 * is voted out, and is restarted once space is freed). Each fault lasts
 * 0.5–3 s, then it heals and the
 * group is given until every relay is a voter again. At the end the whole
 * history is checked by the simulator's checker and every relay must hold
 * the same digest. Resident memory, disk and store records are sampled each
 * time the group is whole again; minute 1 and the end are each the median
 * of a 60–90 s window. The list-append keys move on every 600 appends, so
 * the live state stays the same size (six lists appended to forever would
 * grow it, and with it every write, all run long).
 */
export async function runNemesis (o: NemesisOptions): Promise<NemesisResult> {
  // History and exactly-once records are kept for seconds, not the defaults' minute and day, so that a relay's memory
  // and disk reach their steady state before minute 1 (exactly-once records outlast the clients' 20 s of retries).
  const disks = new SmallDisks()
  const group = await startLocalGroup({ relays: 3, groupId: 'nemesis', txnRetentionMs: RECORDS_KEPT_MS, txnSkewMs: RECORDS_SKEW_MS, relayArgs: () => ['--nemesis', '--retain-ms', String(HISTORY_KEPT_MS)], dataDirs: disks })
  const clients: NetClient[] = []
  // Fresh list keys every 600 appends: the live state stays the same size from minute 1 on (six lists of
  // ~100 elements being appended to), so memory and disk can be held to it.
  const rec = new Recorder(600)
  const faults = Object.fromEntries(FAULT_KINDS.map(k => [k, 0])) as Record<FaultKind, number>
  const relays = group.relays
  // Resources are sampled whenever the group is whole again after a fault (under load, no fault held).
  const samples: Array<{ readonly at: number, readonly sample: ResourceSample }> = []
  try {
    for (let i = 0; i < o.clients; i++) clients.push(await group.startClient({ attemptTimeoutMs: 1_000, timeoutMs: 20_000 }))
    const started = performance.now()
    const end = started + o.minutes * 60_000
    let done = false
    const load = runWorkload(clients, rec, 0, 'nemesis', { until: () => done })
    for (let n = 0; performance.now() < end; n++) {
      const kind = FAULT_KINDS[n % FAULT_KINDS.length] as FaultKind
      const victim = relays[between(0, relays.length - 1)] as RelayProcess
      const others = relays.filter(r => r !== victim)
      const holdMs = between(500, 3_000)
      const detail = await inject(kind, victim, others, holdMs, disks)
      faults[kind]++
      await waitUntil('every relay a voter again', async () => {
        const hs = await healthOrNone(relays)
        return hs !== undefined && hs.every(h => h.ok && h.voters.length === relays.length)
      }, 60_000)
      samples.push({ at: performance.now() - started, sample: await sample(relays) })
      o.progress?.(`fault ${n + 1}: ${kind} on relay-${relays.indexOf(victim)} for ${holdMs} ms${detail}; healed at ${((performance.now() - started) / 1000).toFixed(0)} s, ${rec.count('ok')} calls committed so far`)
      await sleep(o.quietMs ?? 500)
    }
    done = true
    await load
    await waitQuiescent(relays, 60_000)
    let f: Awaited<ReturnType<typeof finals>>
    try {
      f = await finals(clients[0] as NetClient, relays, rec.listKeysUsed)
    } catch (err) {
      // A relay that does not answer a read once the group is quiet is a failure of the run, said with what each relay reports.
      const hs = await Promise.all(relays.map(async r => r.health().then(h => JSON.stringify(h), (e: unknown) => String(e))))
      throw new Error(`a relay did not answer the final reads (${(err as Error).message}); health: ${hs.join(' | ')}`)
    }
    const violations = checkHistory(rec.history(f)).map(formatViolation)
    if (new Set(f.map(x => x.resultDigest)).size !== 1) violations.push(`replicas disagree on the result digest: ${f.map(x => `${x.peer.slice(-6)} ${x.resultDigest}`).join(', ')}`)
    violations.push(...rec.unexpected)
    const completions = rec.ops.filter(op => op.outcome === 'ok' && op.completeTime !== undefined).map(op => op.completeTime as number).sort((a, b) => a - b)
    let maxStall = 0
    for (let i = 1; i < completions.length; i++) maxStall = Math.max(maxStall, (completions[i] as number) - (completions[i - 1] as number))
    // Minute 1: the samples from 30 to 90 s; the end: those of the last 90 s of load. Each figure is the median of its
    // window (a single instant depends on where LevelDB's 4 MiB log and a GC pass stand).
    const total = o.minutes * 60_000
    const minute1 = medianSample(samples.filter(x => x.at >= 30_000 && x.at <= 90_000).map(x => x.sample))
    const endSample = medianSample(samples.filter(x => x.at >= total - 90_000).map(x => x.sample)) ?? await sample(relays)
    return { faults, txns: rec.ops.length, committed: rec.count('ok'), violations, maxStallS: maxStall / 1000, minute1, end: endSample }
  } finally {
    for (const r of relays) r.cont()
    for (const c of clients) await c.stop().catch(() => {})
    await group.stop()
  }
}

/** Applies one fault to `victim`, holds it `holdMs`, heals it. Returns what was done, for the progress line. */
async function inject (kind: FaultKind, victim: RelayProcess, others: readonly RelayProcess[], holdMs: number, disks: SmallDisks): Promise<string> {
  const ids = others.map(r => r.id)
  switch (kind) {
    case 'kill':
      await victim.kill9()
      await sleep(holdMs)
      await victim.start()
      return ''
    case 'pause':
      victim.pause()
      await sleep(holdMs)
      victim.cont()
      return ''
    case 'clock-jump':
      // Seconds, beyond the 2 s a voter follows: its timestamps are refused until the clock comes back.
      return clockOffset(victim, between(3_000, 10_000), holdMs)
    case 'clock-skew':
      return clockOffset(victim, between(100, 1_500), holdMs)
    case 'partition':
      await Promise.all([victim.nemesis({ dropFrom: ids }), ...others.map(async r => r.nemesis({ dropFrom: [victim.id] }))])
      await sleep(holdMs)
      await Promise.all([victim, ...others].map(async r => r.nemesis({})))
      return ''
    case 'one-way': {
      // Deaf (hears no one, is heard) or mute (heard by no one, hears everyone).
      const deaf = Math.random() < 0.5
      if (deaf) await victim.nemesis({ dropFrom: ids })
      else await Promise.all(others.map(async r => r.nemesis({ dropFrom: [victim.id] })))
      await sleep(holdMs)
      await Promise.all([victim, ...others].map(async r => r.nemesis({})))
      return deaf ? ' (deaf)' : ' (mute)'
    }
    case 'slow-link': {
      const ms = between(50, 400)
      await victim.nemesis({ delayFrom: Object.fromEntries(ids.map(id => [id, ms])) })
      await sleep(holdMs)
      await victim.nemesis({})
      return ` (${ms} ms)`
    }
    case 'corrupt': {
      // Its disk damages a record while it is down: found by its check when it opens (the scrub) or reads it.
      await victim.kill9()
      const what = (['value', 'record', 'batch'] as const)[between(0, 2)] as 'value' | 'record' | 'batch'
      const how = (['bit-flip', 'torn', 'misdirected'] as const)[between(0, 2)] as DiskDamage
      const key = await damageRelayStore(victim.dataDir, what, how)
      await sleep(holdMs)
      await victim.start()
      return ` (${how} ${what} ${key ?? 'none held'})`
    }
    case 'disk-full': {
      if (!disks.mounted) return ' (skipped: no small filesystem could be mounted for the stores)'
      // Its store's filesystem fills up: its next write fails, it stops (failed, silent) and is voted out;
      // the operator frees space and restarts it, and it recovers what it had stored.
      const filled = await disks.fill(victim.dataDir)
      const failed = await waitUntil('the relay stopped on the full disk', async () => (await victim.health()).ok === false, 20_000).then(() => true, () => false)
      await sleep(holdMs)
      await disks.free(victim.dataDir)
      await victim.kill9()
      await victim.start()
      return ` (${(filled / 2 ** 20).toFixed(0)} MiB filled; ${failed ? 'it stopped' : 'it did not stop'})`
    }
  }
}

/**
 * A small tmpfs (256 MiB) mounted for each relay's store, so the nemesis can
 * fill one up. Mounting needs root (and a kernel that lets this process
 * mount); without it the disk-full fault is skipped and says so.
 */
class SmallDisks {
  mounted = true

  async prepare (dataDir: string): Promise<void> {
    const store = join(dataDir, 'store')
    await mkdir(store, { recursive: true })
    if (!this.mounted) return
    try {
      await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', store])
    } catch {
      this.mounted = false
    }
  }

  async release (dataDir: string): Promise<void> {
    if (this.mounted) await execFileAsync('umount', [join(dataDir, 'store')])
  }

  /** Writes a filler file until the filesystem is full; returns the bytes written. */
  async fill (dataDir: string): Promise<number> {
    const chunk = Buffer.alloc(1 << 20, 0x5a)
    const file = await open(join(dataDir, 'store', 'filler'), 'w')
    let written = 0
    try {
      for (;;) written += (await file.write(chunk)).bytesWritten
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
    } finally {
      await file.close()
    }
    return written
  }

  async free (dataDir: string): Promise<void> {
    await rm(join(dataDir, 'store', 'filler'), { force: true })
  }
}

/** Moves the victim's clock `ms` forward or back (at random) for `holdMs`, then back to true time. */
async function clockOffset (victim: RelayProcess, ms: number, holdMs: number): Promise<string> {
  const offset = (Math.random() < 0.5 ? -1 : 1) * ms
  await victim.nemesis({ clockOffsetMs: offset })
  await sleep(holdMs)
  await victim.nemesis({})
  return ` (${offset} ms)`
}

/** Relay by relay, the median of each figure over `samples` (undefined when there are none). */
function medianSample (samples: readonly ResourceSample[]): ResourceSample | undefined {
  if (samples.length === 0) return undefined
  const median = (xs: number[]): number => {
    const s = xs.filter(x => !Number.isNaN(x)).sort((a, b) => a - b)
    return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)] as number
  }
  const of = (pick: (x: ResourceSample) => number[]): number[] => (pick(samples[0] as ResourceSample)).map((_, i) => median(samples.map(x => pick(x)[i] as number)))
  return { rss: of(x => x.rss), disk: of(x => x.disk), tables: of(x => x.tables), records: of(x => x.records) }
}

async function sample (relays: readonly RelayProcess[]): Promise<ResourceSample> {
  const rss = await Promise.all(relays.map(async r => rssOf(r.pid)))
  const disk = await Promise.all(relays.map(async r => sizeOf(r.dataDir)))
  const tables = await Promise.all(relays.map(async r => sizeOf(r.dataDir, name => name.endsWith('.log'))))
  const records = await Promise.all(relays.map(async r => r.storeStats().then(s => s.values + s.batches + s.runs + s.records, () => Number.NaN)))
  return { rss, disk, tables, records }
}

async function rssOf (pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
  return kb === undefined ? Number.NaN : Number(kb) * 1024
}

/** Bytes under `path`, leaving out files whose name `skip` picks (a file may go while it is counted). */
async function sizeOf (path: string, skip: (name: string) => boolean = () => false): Promise<number> {
  const s = await stat(path).catch(() => undefined)
  if (s === undefined) return 0
  if (!s.isDirectory()) return s.size
  let total = 0
  for (const e of await readdir(path).catch(() => [])) if (!skip(e)) total += await sizeOf(join(path, e), skip)
  return total
}
