import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { NetClient } from '@tideline/net-libp2p'
import { simRegistry } from '@tideline/sim'
import { startLocalGroup, type RelayProcess } from '@tideline/test-kit'

export interface GrowthOptions {
  /** Stop after this many transactions... */
  readonly txns: number
  /** ...or this many minutes, whichever comes first. */
  readonly minutes: number
  readonly clients: number
  /** Accounts the transfers move between (each one key). */
  readonly keys: number
  /** The relays' `--retain-ms`: history kept below the group's durable frontier. */
  readonly retainMs: number
  /** The genesis's exactly-once retention and skew bound (records are kept retainMs + both behind). */
  readonly txnRetentionMs: number
  readonly txnSkewMs: number
}

/** One replica's store at one moment. */
export interface StoreSample {
  readonly replica: string
  readonly values: number
  readonly batches: number
  readonly runs: number
  readonly records: number
  readonly meta: number
  /** The median of the LevelDB directory's size over this tenth's 5-second samples (its size at any moment swings with the write buffer and compactions). */
  readonly diskBytes: number
}

export interface GrowthSample {
  readonly tenth: number
  readonly txns: number
  readonly seconds: number
  readonly stores: readonly StoreSample[]
}

export interface GrowthResult {
  readonly samples: readonly GrowthSample[]
  readonly txns: number
  /** Whether the transaction target was reached (else the time limit ended the run). */
  readonly reachedTarget: boolean
}

async function dirBytes (dir: string): Promise<number> {
  let total = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    // LevelDB deletes files as it compacts: one gone between the listing and its stat counts 0.
    total += e.isDirectory() ? await dirBytes(p) : await stat(p).then(st => st.size, () => 0)
  }
  return total
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s.length % 2 === 1 ? s[(s.length - 1) / 2] as number : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2
}

async function sample (replica: string, r: RelayProcess, disk: readonly number[]): Promise<StoreSample> {
  const [s, now] = await Promise.all([r.storeStats(), dirBytes(join(r.dataDir, 'store'))])
  return { replica, ...s, diskBytes: median([...disk, now]) }
}

/**
 * `pnpm bench growth`: three relay processes and one read-replica relay
 * (`--observer`) under a steady closed-loop load of 2-key transfers over
 * `keys` accounts, for `txns` transactions or `minutes`, whichever comes
 * first. At every tenth of the run (by transactions or by time, whichever is
 * further along) it counts each replica's store records by kind (`GET
 * /store`) and the bytes of its LevelDB directory.
 */
export async function benchGrowth (o: GrowthOptions, onSample: (s: GrowthSample) => void): Promise<GrowthResult> {
  const retain = ['--retain-ms', String(o.retainMs)]
  const group = await startLocalGroup({ relays: 3, groupId: 'bench-growth', relayArgs: () => retain, txnRetentionMs: o.txnRetentionMs, txnSkewMs: o.txnSkewMs })
  const clients: NetClient[] = []
  try {
    const observer = await group.addRelay(['--observer', ...retain])
    const replicas: Array<[string, RelayProcess]> = [...group.relays.slice(0, 3).map((r, i): [string, RelayProcess] => [`relay-${i}`, r]), ['observer', observer]]
    for (let i = 0; i < 4; i++) clients.push(await group.startClient({ attemptTimeoutMs: 5_000, timeoutMs: 20_000 }))
    const hash = simRegistry.procedures.get('transfer')?.hash ?? ''
    const t0 = performance.now()
    const deadline = t0 + o.minutes * 60_000
    let done = 0
    let tenth = 0
    const samples: GrowthSample[] = []
    const progress = (): number => Math.max(done / o.txns, (performance.now() - t0) / (deadline - t0))
    let sampling: Promise<void> = Promise.resolve()
    // Every replica's directory size every 5 s, gathered per tenth.
    let disk: number[][] = replicas.map(() => [])
    const sizer = setInterval(() => {
      void Promise.all(replicas.map(async ([, r]) => dirBytes(join(r.dataDir, 'store')))).then(sizes => { sizes.forEach((b, i) => { disk[i]?.push(b) }) }, () => {})
    }, 5_000)
    const maybeSample = (last = false): void => {
      const next = last ? 10 : tenth + 1
      if (next > 10 || next <= tenth || (!last && progress() < next / 10)) return
      tenth = next
      const at = { tenth: next, txns: done, seconds: (performance.now() - t0) / 1000 }
      const sizes = disk
      disk = replicas.map(() => [])
      sampling = sampling.then(async () => {
        const s = { ...at, stores: await Promise.all(replicas.map(async ([name, r], i) => sample(name, r, sizes[i] ?? []))) }
        samples.push(s)
        onSample(s)
      }).catch((err: unknown) => { process.stderr.write(`growth: sample at ${next * 10}% failed: ${(err as Error).message}\n`) })
    }
    await Promise.all(Array.from({ length: o.clients }, async (_, c) => {
      const node = clients[c % clients.length] as NetClient
      let n = 0
      while (done < o.txns && performance.now() < deadline) {
        const from = Math.floor(Math.random() * o.keys)
        let to = Math.floor(Math.random() * (o.keys - 1))
        if (to >= from) to++
        try {
          await node.call({ clientTxnId: `g${c}-${n++}`, procedure: 'transfer', hash, args: { from: `a${from}`, to: `a${to}`, amount: 1 } })
          done++
        } catch {
          // A call that timed out is retried as a new one: the load stays steady.
        }
        maybeSample()
      }
    }))
    // The last tenth when the loop ended just short of it (the deadline falls between two calls).
    maybeSample(true)
    clearInterval(sizer)
    await sampling
    return { samples, txns: done, reachedTarget: done >= o.txns }
  } finally {
    for (const c of clients) await c.stop()
    await group.stop()
  }
}

/** Every kind of record a store holds. */
export const recordsOf = (s: StoreSample): number => s.values + s.batches + s.runs + s.records + s.meta
