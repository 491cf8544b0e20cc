import { benchCore, benchCoreThreaded } from './core.js'
import { benchStores } from './store.js'
import { benchNet } from './net.js'
import { benchPartitions, type GroupLoad } from './partitions.js'
import { benchObservers } from './observers.js'
import { benchGroups, type GroupsRun } from './groups.js'
import { benchBrowser, benchDemoPaint } from './browser.js'
import { availableParallelism } from 'node:os'
import { WORKLOADS, benchVsEtcd, type WorkloadName } from './vs-etcd.js'
import { benchScaling, scalingLine, scalingTable, writeScalingReport } from './scaling.js'
import { benchFailover } from './failover.js'
import { benchGrowth, recordsOf, type StoreSample } from './growth.js'
import { benchJoin } from './join.js'
import { FAULT_KINDS, runNemesis } from './nemesis.js'
import { markdownTable, otherRatios, summaryLine, writeReport } from './vs-etcd-report.js'

/**
 * `pnpm bench <workload> [--clients C] [--voters V] [--seconds S] [--accounts A]`
 * Benchmarks print a table and end with one summary line.
 */
function option (args: readonly string[], name: string, fallback: number, min = Number.MIN_VALUE): number {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return fallback
  const v = Number(args[i + 1])
  if (!Number.isFinite(v) || v < min) throw new Error(min === Number.MIN_VALUE ? `--${name} takes a positive number` : `--${name} takes a number >= ${min}`)
  return v
}

/** `--name a,b,c` as a list, or undefined when absent. */
function listOption (args: readonly string[], name: string): string[] | undefined {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return undefined
  const v = args[i + 1]
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} takes a value`)
  return v.split(',')
}

async function main (): Promise<number> {
  const args = process.argv.slice(2).filter(a => a !== '--')
  const workload = args[0]
  if (workload === 'core') {
    const voters = option(args, 'voters', 3)
    const clients = option(args, 'clients', 512)
    const seconds = option(args, 'seconds', 5)
    const accounts = option(args, 'accounts', 10_000)
    process.stdout.write(`core: ${voters} voters in one process, zero delay, MemoryStore, ${clients} closed-loop clients, 2-key transfers over ${accounts} accounts, ${seconds} s per mode\n`)
    const single = await benchCore({ voters, clients, seconds, accounts })
    const threaded = await benchCoreThreaded({ voters, clients, seconds, accounts })
    process.stdout.write(`| mode | txn/s | committed | aborted | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n`)
    for (const [mode, r] of [['one thread', single], ['thread per voter', threaded]] as const) {
      process.stdout.write(`| ${mode} | ${r.txnPerSec.toFixed(0)} | ${r.committed} | ${r.aborted} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} |\n`)
    }
    process.stdout.write(`threaded/one-thread ratio ${(threaded.txnPerSec / single.txnPerSec).toFixed(2)}\n`)
    process.stdout.write(`core: ${Math.round(single.txnPerSec)} txn/s\n`)
    return 0
  }
  if (workload === 'join') {
    const txns = option(args, 'txns', 1_000_000)
    const replayTxns = option(args, 'replay-txns', 20_000)
    const keys = option(args, 'keys', 10_000)
    const valueBytes = option(args, 'value-bytes', 1024)
    const clients = option(args, 'clients', 64)
    process.stdout.write(`join: 3 tideline-relay processes keeping 2 s of history and 10 + 5 s of exactly-once records; ${txns} blind writes of ${valueBytes}-byte values over ${keys} keys; then a new relay process (voted in) and a new Chromium tab (synced) join by snapshot; replay from genesis measured with ${replayTxns} txns on a group that keeps everything, scaled to ${txns}\n`)
    const r = await benchJoin({ txns, replayTxns, keys, valueBytes, clients, profile: args.includes('--profile') }, line => { process.stdout.write(`${line}\n`) })
    process.stdout.write(`join: tab ${r.tabS.toFixed(2)} s, relay ${r.relayS.toFixed(2)} s, replay-from-genesis ${r.replayS.toFixed(1)} s (scaled from ${r.replayMeasuredS.toFixed(1)} s measured for ${replayTxns} txns)\n`)
    return 0
  }
  if (workload === 'growth') {
    const txns = option(args, 'txns', 1_000_000)
    const minutes = option(args, 'minutes', 10)
    const clients = option(args, 'clients', 32)
    const keys = option(args, 'keys', 10_000)
    // Short enough that every window is full before the first tenth (with the defaults, 60 s of
    // history and 24 h of exactly-once records, the records would grow for a day).
    const retainMs = option(args, 'retain-ms', 10_000)
    const txnRetentionMs = option(args, 'txn-retention-ms', 10_000)
    const txnSkewMs = option(args, 'txn-skew-ms', 2_000)
    process.stdout.write(`growth: 3 tideline-relay processes and one read replica (--observer), ${clients} closed-loop clients, 2-key transfers over ${keys} keys, until ${txns} transactions or ${minutes} minutes; history kept ${retainMs} ms below the durable frontier, exactly-once records ${txnRetentionMs} + ${txnSkewMs} ms further (genesis txnRetentionMs, txnSkewMs)\n`)
    process.stdout.write('records: newest values / batches / run records / exactly-once records (meta left out); MB: the LevelDB directory, median of its size every 5 s over the tenth\n')
    process.stdout.write('| at | txns | s | relay-0 records | relay-0 MB | relay-1 records | relay-1 MB | relay-2 records | relay-2 MB | observer records | observer MB |\n|---|---|---|---|---|---|---|---|---|---|---|\n')
    const cell = (s: StoreSample): string => `${s.values}/${s.batches}/${s.runs}/${s.records} | ${(s.diskBytes / 2 ** 20).toFixed(1)}`
    const r = await benchGrowth({ txns, minutes, clients, keys, retainMs, txnRetentionMs, txnSkewMs }, s => {
      process.stdout.write(`| ${s.tenth * 10}% | ${s.txns} | ${s.seconds.toFixed(0)} | ${s.stores.map(cell).join(' | ')} |\n`)
    })
    const first = r.samples[0]
    const last = r.samples[r.samples.length - 1]
    if (first === undefined || last === undefined) throw new Error('growth: no samples')
    const records = Math.max(...last.stores.map(recordsOf))
    const disk = Math.max(...last.stores.map(s => s.diskBytes))
    const ratio = Math.max(...last.stores.map((s, i) => s.diskBytes / Math.max(1, first.stores[i]?.diskBytes ?? 1)))
    process.stdout.write(`${r.reachedTarget ? 'reached the transaction target' : `stopped by the ${minutes}-minute limit`}\n`)
    process.stdout.write(`growth: ${r.txns} txns, records ${records} (keys ${keys}), disk ${(disk / 2 ** 20).toFixed(1)} MB, ratio last/10% ${ratio.toFixed(2)}\n`)
    return 0
  }
  if (workload === 'nemesis') {
    // --soak: a long run (an hour unless --minutes says otherwise) with the faults spaced 20 s apart.
    const soak = args.includes('--soak')
    const minutes = option(args, 'minutes', soak ? 60 : 10)
    const clients = option(args, 'clients', 8)
    const quietMs = option(args, 'quiet-ms', soak ? 20_000 : 500)
    process.stdout.write(`nemesis: 3 tideline-relay processes (--nemesis) on loopback, ${clients} closed-loop checked clients (transfers, list-append, strict reads) for ${minutes} min; faults in turn, one relay at a time, ${quietMs} ms of quiet after each: ${FAULT_KINDS.join(', ')}\n`)
    const r = await runNemesis({ minutes, clients, quietMs, progress: line => { process.stdout.write(`${line}\n`) } })
    const mb = (xs: readonly number[]): string => xs.map(x => (x / 2 ** 20).toFixed(1)).join(' / ')
    process.stdout.write(`| fault | count |\n|---|---|\n${FAULT_KINDS.map(k => `| ${k} | ${r.faults[k]} |`).join('\n')}\n`)
    if (r.minute1 !== undefined) {
      const ratio = (a: readonly number[], b: readonly number[]): string => Math.max(...b.map((x, i) => x / Math.max(1, a[i] ?? 1))).toFixed(2)
      process.stdout.write('resources: medians of the samples taken whenever the group was whole again, from 30 to 90 s (minute 1) and over the last 90 s of load (the end)\n')
      process.stdout.write(`relay memory (RSS, MiB) at minute 1: ${mb(r.minute1.rss)}; at the end: ${mb(r.end.rss)} (largest ratio ${ratio(r.minute1.rss, r.end.rss)})\n`)
      process.stdout.write(`relay disk (MiB) at minute 1: ${mb(r.minute1.disk)}; at the end: ${mb(r.end.disk)} (largest ratio ${ratio(r.minute1.disk, r.end.disk)})\n`)
      process.stdout.write(`relay disk without LevelDB's log (MiB) at minute 1: ${mb(r.minute1.tables)}; at the end: ${mb(r.end.tables)} (largest ratio ${ratio(r.minute1.tables, r.end.tables)})\n`)
      process.stdout.write(`relay store records at minute 1: ${r.minute1.records.join(' / ')}; at the end: ${r.end.records.join(' / ')} (largest ratio ${ratio(r.minute1.records, r.end.records)})\n`)
    }
    for (const v of r.violations.slice(0, 10)) process.stdout.write(`violation: ${v}\n`)
    const total = FAULT_KINDS.reduce((n, k) => n + r.faults[k], 0)
    process.stdout.write(`nemesis: ${total} faults, ${r.txns} txns checked (${r.committed} committed), violations ${r.violations.length}, max stall ${r.maxStallS.toFixed(2)} s\n`)
    return r.violations.length > 0 ? 1 : 0
  }
  if (workload === 'failover') {
    const runs = option(args, 'runs', 10)
    const clients = option(args, 'clients', 8)
    const calmSeconds = option(args, 'calm-seconds', 0)
    const calmLoops = option(args, 'calm-loops', 64)
    process.stdout.write(`failover: 3 tideline-relay processes on loopback (default failure detector: adaptive, 500 ms over each voter's usual gap, at most 2 s), ${clients} closed-loop clients (transfers, list-append, strict reads)${calmSeconds > 0 ? `; first ${calmSeconds} s at full load with no fault (${calmLoops} closed-loop transfer clients), counting epoch changes` : ''}; then ${runs} runs, kill -9 and SIGSTOP of one relay in turn: measure, restart or SIGCONT it, wait until it is voted back in\n`)
    const r = await benchFailover({ runs, clients, calmSeconds, calmLoops })
    if (r.calm !== undefined) process.stdout.write(`calm: ${r.calm.seconds} s at full load, ${r.calm.txns} txns (${Math.round(r.calm.txnPerSec)} txn/s), epoch changes ${r.calm.epochChanges} (proposals ${r.calm.proposals}; stalls relays noticed in themselves ${r.calm.ownStalls})\n`)
    process.stdout.write(`| run | fault | relay | proposed s | installed s | voted out s (polled) | resume s | rejoin s | epoch after | committed in run |\n|---|---|---|---|---|---|---|---|---|---|\n`)
    r.runs.forEach((x, i) => { process.stdout.write(`| ${i + 1} | ${x.fault === 'kill' ? 'kill -9' : 'SIGSTOP'} | relay-${x.victim} | ${x.proposedS.toFixed(2)} | ${x.installedS.toFixed(2)} | ${x.votedOutS.toFixed(2)} | ${x.resumeS.toFixed(2)} | ${x.rejoinS.toFixed(2)} | ${x.epoch} | ${x.committedDuringRun} |\n`) })
    for (const v of r.violations.slice(0, 10)) process.stdout.write(`violation: ${v}\n`)
    process.stdout.write(`history checked: ${r.committed} committed calls\n`)
    process.stdout.write(`failover: resume p50 ${r.resumeP50S.toFixed(2)} s, max ${r.resumeMaxS.toFixed(2)} s, violations ${r.violations.length}\n`)
    return r.violations.length > 0 ? 1 : 0
  }
  if (workload === 'browser') {
    const clients = option(args, 'clients', 8)
    const seconds = option(args, 'seconds', 10)
    const evalThunks = option(args, 'eval-thunks', 20_000)
    const runSize = option(args, 'run-size', 256)
    const optimisticCalls = option(args, 'optimistic-calls', 100)
    if (args.includes('--only') && args[args.indexOf('--only') + 1] === 'demo') {
      const d = await benchDemoPaint(optimisticCalls)
      process.stdout.write(`demo, "Add card" (${d.calls} clicks, Chromium ${d.chromium}): on the board p50 ${d.shownP50.toFixed(1)} ms; first frame after it p50 ${d.paintP50.toFixed(1)} ms, p99 ${d.paintP99.toFixed(1)} ms; final result p50 ${d.finalP50.toFixed(1)} ms\n`)
      return 0
    }
    process.stdout.write(`browser: one Chromium tab (@tideline/db, IndexedDB replica and evaluation in a module worker) calling 2-key transfers through 3 relay processes on loopback WebSockets, ${clients} calls in flight, ${seconds} s; then ${evalThunks} thunks applied in the worker in runs of ${runSize}; then ${optimisticCalls} optimistic adds one at a time from a React page (useCall, useQuery over a prefix) through 3 more relays\n`)
    const r = await benchBrowser({ clients, seconds, evalThunks, runSize, optimisticCalls })
    process.stdout.write(`| Chromium | calls | failed | txn/s | p50 ms | p99 ms | worker eval txn/s |\n|---|---|---|---|---|---|---|\n`)
    process.stdout.write(`| ${r.chromium} | ${r.calls} | ${r.failed} | ${r.txnPerSec.toFixed(0)} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.evalTxnPerSec.toFixed(0)} |\n`)
    const o = r.optimistic
    process.stdout.write(`optimistic (${o.calls} calls): in the DOM p50 ${o.shownP50.toFixed(1)} ms; first frame after it p50 ${o.paintP50.toFixed(1)} ms, p99 ${o.paintP99.toFixed(1)} ms; final result p50 ${o.finalP50.toFixed(1)} ms, p99 ${o.finalP99.toFixed(1)} ms\n`)
    const d = r.demo
    process.stdout.write(`demo, "Add card" (${d.calls} clicks): on the board p50 ${d.shownP50.toFixed(1)} ms; first frame after it p50 ${d.paintP50.toFixed(1)} ms, p99 ${d.paintP99.toFixed(1)} ms; final result ("Card added.") p50 ${d.finalP50.toFixed(1)} ms, p99 ${d.finalP99.toFixed(1)} ms\n`)
    process.stdout.write(`browser: p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, worker eval ${Math.round(r.evalTxnPerSec)} txn/s, optimistic paint p50 ${o.paintP50.toFixed(1)} ms (final ${o.finalP50.toFixed(1)} ms), demo click to screen p50 ${d.paintP50.toFixed(1)} ms (final ${d.finalP50.toFixed(1)} ms)\n`)
    return 0
  }
  if (workload === 'store') {
    const batches = option(args, 'batches', 100)
    const perBatch = option(args, 'per-batch', 200)
    const naiveWrites = option(args, 'naive-writes', 500)
    const reads = option(args, 'reads', 2000)
    process.stdout.write(`store: ${batches} strict batches of ${perBatch} thunks, the same as relaxed settlement batches (one version each), ${reads} point reads; naive: ${naiveWrites} thunks, one strict transaction each\n`)
    const r = await benchStores({ batches, perBatch, naiveWrites, reads })
    const n = (x: number): string => (Number.isNaN(x) ? '-' : Math.round(x).toString())
    const ms = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(3))
    process.stdout.write(`| store | apply/s | settle/s | read p50 ms |\n|---|---|---|---|\n`)
    process.stdout.write(`| IdbStore, Chromium ${r.chromium} (page) | ${n(r.idb.applyPerSec)} | ${n(r.idb.settlePerSec)} | ${ms(r.idb.readP50Ms)} |\n`)
    process.stdout.write(`| naive IndexedDB (one transaction per write) | ${n(r.naiveIdb.applyPerSec)} | - | - |\n`)
    process.stdout.write(`| LevelStore (classic-level), Node | ${n(r.node.applyPerSec)} | ${n(r.node.settlePerSec)} | ${ms(r.node.readP50Ms)} |\n`)
    process.stdout.write(`batched/naive IndexedDB apply ratio ${(r.idb.applyPerSec / r.naiveIdb.applyPerSec).toFixed(1)}\n`)
    process.stdout.write(`store: idb apply ${n(r.idb.applyPerSec)}/s, idb settle ${n(r.idb.settlePerSec)}/s, idb read p50 ${ms(r.idb.readP50Ms)} ms, node apply ${n(r.node.applyPerSec)}/s, naive idb ${n(r.naiveIdb.applyPerSec)}/s\n`)
    return 0
  }
  if (workload === 'net') {
    const clients = option(args, 'clients', 64)
    const seconds = option(args, 'seconds', 10)
    const accounts = option(args, 'accounts', 10_000)
    const clientNodes = option(args, 'client-nodes', 8)
    const profile = args.includes('--profile')
    const idleSeconds = option(args, 'idle-seconds', 30, 0)
    const signedCalls = args.includes('--signed-calls')
    process.stdout.write(`net: 3 tideline-relay processes on loopback TCP (LevelStore), ${clients} closed-loop clients on ${clientNodes} libp2p client peers, 2-key transfers over ${accounts} accounts, ${seconds} s after 2 s warm-up${profile ? ', relays under --cpu-prof' : ''}${signedCalls ? ', a group of signed calls (every replica checks each caller)' : ''}\n`)
    const r = await benchNet({ clients, seconds, accounts, clientNodes, profile, idleSeconds, signedCalls })
    process.stdout.write(`| txn/s | committed | aborted | failed | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n`)
    process.stdout.write(`| ${r.txnPerSec.toFixed(0)} | ${r.committed} | ${r.aborted} | ${r.failed} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} |\n`)
    process.stdout.write(`relay CPU (user+sys over the whole run): ${r.relayCpu.map(x => `relay-${x.relay} ${(x.cpuMs / 1000).toFixed(1)} s`).join(', ')}; in the measured window ${r.relayCpuMsPerTxn.toFixed(2)} ms per transaction over the 3 relays, and ${r.clientCpuMsPerTxn.toFixed(2)} ms in the clients' process (the whole machine: ${(r.relayCpuMsPerTxn + r.clientCpuMsPerTxn).toFixed(2)} ms, so ${availableParallelism()} cores allow at most ${Math.round(availableParallelism() * 1000 / (r.relayCpuMsPerTxn + r.clientCpuMsPerTxn))} txn/s); ${r.thunksPerBatch.toFixed(1)} transactions per batch\n`)
    if (r.idleCoreShare.length > 0) process.stdout.write(`idle relays (clients connected, ${idleSeconds} s, /proc): ${r.idleCoreShare.map((x, i) => `relay-${i} ${(100 * x).toFixed(2)}%`).join(', ')} of a core\n`)
    if (r.categories.length > 0) {
      process.stdout.write(`\nrelay CPU by component (self time, all relays):\n${r.categories.map(c => `  ${(100 * c.share).toFixed(1).padStart(5)}%  ${c.name}`).join('\n')}\n`)
      process.stdout.write(`\ntop functions (self time):\n${r.profile.map(p => `  ${(100 * p.share).toFixed(1).padStart(5)}%  ${p.name}`).join('\n')}\n`)
    }
    const idle = r.idleCoreShare.length > 0 ? `, idle relay ${(100 * Math.max(...r.idleCoreShare)).toFixed(2)}% of a core (max)` : ''
    process.stdout.write(`net: ${Math.round(r.txnPerSec)} txn/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, relay CPU ${r.relayCpuMsPerTxn.toFixed(2)} ms/txn${idle}\n`)
    return 0
  }
  if (workload === 'vs-etcd') {
    const clients = option(args, 'clients', 64)
    const seconds = option(args, 'seconds', 10)
    const clientNodes = option(args, 'client-nodes', 8)
    const voters = option(args, 'voters', 3)
    const only = listOption(args, 'only')?.map(w => {
      if (!WORKLOADS.some(x => x.name === w)) throw new Error(`--only takes workloads out of ${WORKLOADS.map(x => x.name).join(', ')}`)
      return w as WorkloadName
    })
    const system = listOption(args, 'system')?.[0]
    if (system !== undefined && system !== 'tideline' && system !== 'etcd') throw new Error('--system takes tideline or etcd')
    const repeat = option(args, 'repeat', 1)
    const setting = `${clients} closed-loop clients on ${clientNodes} client connections per system (libp2p client peers / etcd3 gRPC channels), ${seconds} s measured after 2 s warm-up per workload and system, one system at a time on loopback, the systems alternating run by run${repeat > 1 ? `, ${repeat} runs each, the median one reported` : ''}; Tideline: ${voters} tideline-relay processes (all voters, LevelStore), a fresh group per workload; etcd ${'${etcd}'}: ${voters} members, default settings, one cluster for every workload. puts: each client writes its own keys; transfers: 2 random accounts of 10 (hot) or 10,000 (cold), etcd as read txn + compare-mod-revisions txn, retried on conflict, an overdraft is an aborted, completed transaction in both; strict-reads: 2 random keys of 10,000 in one read (Tideline 'strict', etcd linearizable txn of two ranges); list-append: one element onto one of 100 lists (etcd: read + compare-mod-revision txn, retried). bytes/txn: what every server sent (Tideline: direct frames before Noise and muxing, plus gossip published; etcd: gRPC to clients plus peer traffic); checked: transfers conserve the total balance, every committed append is in its list exactly once`
    process.stdout.write(`vs-etcd: ${setting.replace(' ${etcd}', '')}\n`)
    const r = await benchVsEtcd({ clients, seconds, clientNodes, voters, ...(only === undefined ? {} : { only }), ...(system === undefined ? {} : { system }), repeat, log: line => { process.stdout.write(`${line}\n`) } })
    process.stdout.write(`\n${markdownTable(r)}`)
    const dir = await writeReport(r, setting.replace('${etcd}', r.etcdVersion))
    process.stdout.write(`wrote ${dir}/vs-etcd.{json,md,svg}\n`)
    process.stdout.write(`${otherRatios(r)}\n`)
    process.stdout.write(`${summaryLine(r)}\n`)
    return r.rows.some(x => x.conserved === false) ? 1 : 0
  }
  if (workload === 'partitions') {
    const rate = option(args, 'rate', 60)
    const seconds = option(args, 'seconds', 10)
    const clients = option(args, 'clients', 16)
    const accounts = option(args, 'accounts', 10_000)
    process.stdout.write(`partitions: ${rate} txn/s of cold transfers (paced, ${clients} callers) over ${accounts} accounts for ${seconds} s after 2 s warm-up each: single-partition transfers on 3 relays of one full-replica group, 6 relays of one, 6 relays in 2 partitions of 3 replicas; then half of them across both partitions; then 3 relays in 10 partitions with two observer relays, one of every partition and one of partition 0, under single-partition transfers over the 10\n`)
    const r = await benchPartitions({ rate, seconds, clients, accounts })
    const row = (name: string, g: GroupLoad): string => `| ${name} | ${g.relays} | ${g.txnPerSec.toFixed(0)} | ${g.failed} | ${g.cpuMsPerTxn.toFixed(2)} | ${g.cpuMsPerTxnPerRelay.toFixed(3)} | ${g.singleP50Ms.toFixed(1)} | ${g.crossP50Ms === undefined ? '-' : g.crossP50Ms.toFixed(1)} | ${g.framesPerTxnPerRelay.toFixed(1)} | ${g.messagesOutPerTxnPerRelay.toFixed(1)} |\n`
    process.stdout.write('| group | relays | txn/s | failed | relay CPU ms/txn (all) | per relay | p50 ms (one partition) | p50 ms (across) | frames in+out /txn/relay | messages out /txn/relay |\n|---|---|---|---|---|---|---|---|---|---|\n')
    process.stdout.write(row('full replicas', r.full) + row('full replicas', r.full6) + row('2 partitions', r.partitioned) + row('2 partitions, half across', r.mixed))
    const ob = r.observers
    process.stdout.write(`\n| observer (3 relays, ${ob.partitions} partitions, ${ob.txnPerSec.toFixed(0)} txn/s) | bytes received | thunks received |\n|---|---|---|\n| every partition | ${ob.full.bytes} | ${ob.full.thunks} |\n| partition 0 only | ${ob.one.bytes} | ${ob.one.thunks} |\n`)
    const cpu = r.partitioned.cpuMsPerTxnPerRelay / r.full.cpuMsPerTxnPerRelay
    const crossP50 = (r.mixed.crossP50Ms ?? Number.NaN) / r.mixed.singleP50Ms
    const bytes = ob.one.bytes / ob.full.bytes
    process.stdout.write(`against 6 full replicas: cpu/txn/relay ${(r.partitioned.cpuMsPerTxnPerRelay / r.full6.cpuMsPerTxnPerRelay).toFixed(2)}x\n`)
    process.stdout.write(`partitions: cpu/txn/relay ${cpu.toFixed(2)}x, cross p50 ${crossP50.toFixed(2)}x, observer bytes ${bytes.toFixed(2)}x\n`)
    return r.full.failed + r.full6.failed + r.partitioned.failed + r.mixed.failed > 0 ? 1 : 0
  }
  if (workload === 'observers') {
    const rate = option(args, 'rate', 60)
    const seconds = option(args, 'seconds', 10)
    const clients = option(args, 'clients', 16)
    const accounts = option(args, 'accounts', 10_000)
    const counts = (listOption(args, 'counts') ?? ['0', '16', '48']).map(Number)
    if (counts.some(c => !Number.isInteger(c) || c < 0)) throw new Error('--counts takes observer counts, e.g. 0,16,48')
    // --no-tree: every voter serves every observer (the baseline before the dissemination tree).
    const tree = !args.includes('--no-tree')
    process.stdout.write(`observers: 3 tideline-relay processes (all voters, LevelStore), ${rate} txn/s of cold transfers (paced, ${clients} callers) over ${accounts} accounts for ${seconds} s after 2 s warm-up, with ${counts.join(', ')} observer peers (Node peers, each its own libp2p node and memory store, connected to the three relays${tree ? ', in the dissemination tree' : ', each served by every relay (--no-tree)'}; in processes of their own, 24 each, at the lowest CPU priority), a fresh group each; relay bytes: direct frames before Noise and muxing plus watermark gossip published\n`)
    const points = await benchObservers({ rate, seconds, clients, accounts, counts, tree }, line => { process.stdout.write(`${line}\n`) })
    process.stdout.write('| observers | txn/s | failed | relay bytes out /txn (3 relays) | relay messages out /txn | relay CPU ms/txn | callers\' process CPU ms/txn | observers\' processes CPU ms/txn | batches checked /observer/txn | p50 ms | p99 ms | observers at the relays\' digest | catch-up ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n')
    for (const x of points) process.stdout.write(`| ${x.observers} | ${x.txnPerSec.toFixed(0)} | ${x.failed} | ${x.bytesOutPerTxn.toFixed(0)} | ${x.messagesOutPerTxn.toFixed(1)} | ${x.cpuMsPerTxn.toFixed(2)} | ${x.benchCpuMsPerTxn.toFixed(2)} | ${x.observersCpuMsPerTxn.toFixed(2)} | ${x.checkedPerObserverTxn.toFixed(2)} | ${x.p50Ms.toFixed(1)} | ${x.p99Ms.toFixed(1)} | ${x.caughtUp}/${x.observers} | ${x.catchUpMs.toFixed(0)} |\n`)
    const zero = points[0]
    const most = points[points.length - 1]
    if (zero === undefined || most === undefined) throw new Error('observers: no points')
    for (const x of points) if (x.observers > 0) process.stdout.write(`tree at ${x.observers}: places lost during the load ${x.unplaced}, gap requests ${x.gapRequests}\n`)
    for (const x of points) process.stdout.write(`relay messages /txn by type at ${x.observers}: ${Object.entries(x.messagesByType).sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${n.toFixed(2)}`).join(', ')}\n`)
    process.stdout.write(`relay CPU/txn ${most.observers} vs ${zero.observers}: ${(most.cpuMsPerTxn / zero.cpuMsPerTxn).toFixed(2)}x\n`)
    process.stdout.write(`observers: bytes/txn ${most.observers} vs ${zero.observers} ${(most.bytesOutPerTxn / zero.bytesOutPerTxn).toFixed(1)}x, msgs/txn ${(most.messagesOutPerTxn / zero.messagesOutPerTxn).toFixed(1)}x, p50 ${(most.p50Ms / zero.p50Ms).toFixed(1)}x\n`)
    return points.some(x => x.failed > 0 || x.caughtUp < x.observers) ? 1 : 0
  }
  if (workload === 'groups') {
    const groups = option(args, 'groups', 100, 2)
    const seconds = option(args, 'seconds', 30)
    const settleSeconds = option(args, 'settle', 70, 0)
    process.stdout.write(`groups: 3 relay processes each host ${groups} groups (their main one, and ${groups - 1} added over HTTP, the three relays voters of each); one transfer commits in every group, then they idle (until every group is quiet, then ${settleSeconds} s: past the 60 s retention window, history collection done); relay-0's CPU (user+sys, /proc) over ${seconds} s and its resident memory (VmRSS) against one group; with idle voters going quiet (the default) and with quiescence off (--quiesce-after-ms 0)\n`)
    const r = await benchGroups({ groups, seconds, settleSeconds }, line => { process.stdout.write(`${line}\n`) })
    const perGroup = (x: GroupsRun): number => (x.rssAllMiB - x.rssOneMiB) / (x.groups - 1)
    const row = (name: string, x: GroupsRun): string => `| ${name} | ${x.committed + 1} of ${x.groups} | ${x.quiet} | ${x.cpuPctOne.toFixed(2)} | ${x.cpuPctAll.toFixed(2)} | ${x.framesOut} | ${x.rssOneMiB.toFixed(1)} | ${x.rssAllMiB.toFixed(1)} | ${perGroup(x).toFixed(2)} |\n`
    process.stdout.write(`\n| idle voters | groups committed | quiet | CPU % of a core, 1 group | CPU %, ${groups} groups | frames sent in ${seconds} s | RSS MiB, 1 group | RSS MiB, ${groups} groups | MiB per added group |\n|---|---|---|---|---|---|---|---|---|\n`)
    process.stdout.write(row('go quiet (default)', r.quiet) + row('heartbeat (quiescence off)', r.heartbeats))
    process.stdout.write(`groups: ${groups} idle groups per relay: cpu ${r.quiet.cpuPctAll.toFixed(2)}% of a core (${r.heartbeats.cpuPctAll.toFixed(1)}% without quiescence), memory ${perGroup(r.quiet).toFixed(2)} MiB per group\n`)
    return r.quiet.committed + 1 < groups || r.heartbeats.committed + 1 < groups ? 1 : 0
  }
  if (workload === 'scaling') {
    const clients = option(args, 'clients', 64)
    const seconds = option(args, 'seconds', 10)
    const clientNodes = option(args, 'client-nodes', 8)
    const voterCounts = (listOption(args, 'voters') ?? ['3', '5', '7']).map(Number)
    if (voterCounts.some(v => !Number.isInteger(v) || v < 1)) throw new Error('--voters takes a comma-separated list of group sizes')
    process.stdout.write(`scaling: transfers over 10,000 accounts, ${clients} closed-loop clients on ${clientNodes} client connections, ${seconds} s after 2 s warm-up; Tideline with ${voterCounts.join(', ')} tideline-relay processes (all voters), etcd with as many members, all on this machine's ${availableParallelism()} cores\n`)
    const r = await benchScaling({ clients, seconds, clientNodes, voterCounts, repeat: option(args, 'repeat', 1), log: line => { process.stdout.write(`${line}\n`) } })
    const table = scalingTable(r)
    process.stdout.write(`\n${table}`)
    const dir = await writeScalingReport(r)
    process.stdout.write(`wrote ${dir}/scaling.{json,md}\n`)
    process.stdout.write(`${scalingLine(r)}\n`)
    return 0
  }
  process.stderr.write(`unknown workload ${JSON.stringify(workload)}; available: core, store, net, browser, vs-etcd, scaling, failover, growth, join, nemesis, partitions, groups, observers\n`)
  return 2
}

process.exitCode = await main()
