import { formatViolation } from './checker.js'
import { runSeed, type FaultMode } from './run.js'

/**
 * `pnpm sim --seeds N [--start S] [--voters V] [--observers O] [--txns T] [--partitions P] [--faults none|net|crash|all]`
 * (without --voters: 3, or 5 to 7 in partitioned seeds; without --partitions: one seed in three has 2 to 5)
 * Runs seeds in order; the last line is the summary, the exit code is non-zero on any violation.
 */
function parse (argv: readonly string[]): { seeds: number, start: number, voters: number | undefined, observers: number | undefined, txns: number, partitions: number | undefined, faults: FaultMode, verbose: boolean, entryHub: boolean, partial: boolean | undefined } {
  const o = { seeds: 100, start: 1, voters: undefined as number | undefined, observers: undefined as number | undefined, txns: 60, partitions: undefined as number | undefined, faults: 'all' as FaultMode, verbose: false, entryHub: true, partial: undefined as boolean | undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') continue
    if (a === '--verbose') { o.verbose = true; continue }
    if (a === '--no-entry-hub') { o.entryHub = false; continue }
    if (a === '--partial') { o.partial = true; continue }
    if (a === '--no-partial') { o.partial = false; continue }
    const v = argv[++i]
    if (v === undefined) throw new Error(`${a} needs a value`)
    switch (a) {
      case '--seeds': o.seeds = int(a, v, 1); break
      case '--start': o.start = int(a, v, 0); break
      case '--voters': o.voters = int(a, v, 1); break
      case '--observers': o.observers = int(a, v, 0); break
      case '--txns': o.txns = int(a, v, 1); break
      case '--partitions': o.partitions = int(a, v, 1); break
      case '--faults':
        if (v !== 'none' && v !== 'net' && v !== 'crash' && v !== 'all') throw new Error('--faults is none, net, crash or all')
        o.faults = v
        break
      default: throw new Error(`unknown option ${a}`)
    }
  }
  return o
}

function int (name: string, v: string, min: number): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} takes a whole number >= ${min}`)
  return n
}

function pct (xs: number[], p: number): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number
}

async function main (): Promise<number> {
  let o
  try {
    o = parse(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`)
    return 2
  }
  let violations = 0
  let committed = 0
  let unknown = 0
  let reads = 0
  let crashes = 0
  let firstFailing: number | undefined
  const resume: number[] = []
  const catchUp: number[] = []
  const failover: number[] = []
  let epochChanges = 0
  let batches = 0
  let minted = 0
  let insideBatch = 0
  const history = { pauses: 0, ownStalls: 0, quiesced: 0, relayedEntries: 0, wipes: 0, retired: 0, allRetired: 0, relayedDecisions: 0, forgedDecisions: 0, refusedDecisions: 0, replayedDecisions: 0, staleDecisions: 0, revokedClients: 0, revocationsInstalled: 0, forgedCalls: 0, refusedCalls: 0, snapshots: 0, snapshotRetries: 0, gcSteps: 0, gcBatches: 0, gcRecords: 0, gcPartial: 0, expired: 0, forgedSnapshots: 0, forwarded: 0, forgedForwarded: 0, unsignedForwarded: 0, forwardedChecked: 0, forgedRefused: 0, forgedDown: 0, treePlaced: 0, treeChecked: 0, hidden: 0, handedOver: 0, outvoted: 0, corruptedChunks: 0, snapshotMismatches: 0, plants: 0, damaged: 0, healed: 0, storageFaults: 0, batchDamage: 0, stateDamage: 0, partialThunks: 0, voterThunks: 0, partialMinted: 0, tailsTaken: 0, partitionedMinted: 0, spansRefused: 0, projectionsRefused: 0 }
  const started = performance.now()
  for (let seed = o.start; seed < o.start + o.seeds; seed++) {
    const r = await runSeed({ seed, txns: o.txns, ...(o.observers === undefined ? {} : { observers: o.observers }), faults: o.faults, ...(o.voters === undefined ? {} : { voters: o.voters }), ...(o.partitions === undefined ? {} : { partitions: o.partitions }), ...(o.entryHub ? {} : { entryHub: false }), ...(o.partial === undefined ? {} : { partial: o.partial }) })
    committed += r.stats.committed
    unknown += r.stats.unknown
    reads += r.stats.reads
    crashes += r.stats.crashes
    resume.push(...r.stats.resumeMs)
    catchUp.push(...r.stats.catchUpMs)
    failover.push(...r.stats.failoverMs)
    epochChanges += r.stats.epochs
    batches += r.stats.batches
    minted += r.stats.minted
    insideBatch += r.stats.resumedInsideBatch
    for (const k of Object.keys(history) as Array<keyof typeof history>) history[k] += r.stats[k]
    if (o.seeds === 1 || o.verbose) {
      process.stdout.write(`seed ${seed}: digest ${r.digest}, committed ${r.stats.committed}, unknown ${r.stats.unknown}, reads ${r.stats.reads}, crashes ${r.stats.crashes}, epoch ${r.stats.epochs}, partitions ${r.stats.partitions}, messages ${r.stats.messages} (${r.stats.dropped} dropped), virtual ${r.stats.virtualMs} ms\n`)
    }
    if (r.violations.length > 0) {
      violations += r.violations.length
      firstFailing ??= seed
      process.stdout.write(`seed ${seed}: ${r.violations.length} violation(s)\n`)
      for (const v of r.violations.slice(0, 5)) process.stdout.write(`  ${formatViolation(v)}\n`)
    }
  }
  const secs = (performance.now() - started) / 1000
  process.stdout.write(`wall ${secs.toFixed(1)} s; unknown-outcome txns ${unknown}; strict/snapshot reads ${reads}; crashes ${crashes}; pauses ${history.pauses} (steps that found their peer had stalled ${history.ownStalls}); voters gone quiet ${history.quiesced} times; entries relayed by entry hubs ${history.relayedEntries}\n`)
  if (resume.length > 0) process.stdout.write(`voter restart -> watermark resumes (virtual ms): p50 ${pct(resume, 0.5)}, p99 ${pct(resume, 0.99)}, max ${Math.max(...resume)} over ${resume.length} restarts\n`)
  if (catchUp.length > 0) process.stdout.write(`restart -> caught up (virtual ms): p50 ${pct(catchUp, 0.5)}, p99 ${pct(catchUp, 0.99)}, max ${Math.max(...catchUp)}\n`)
  if (epochChanges > 0) process.stdout.write(`epoch changes installed ${epochChanges}\n`)
  if (history.forwarded + history.forgedForwarded > 0) process.stdout.write(`batches passed on to observers by a forwarding member: ${history.forwarded} as sent, ${history.forgedForwarded} forged, ${history.unsignedForwarded} unsigned; checked by the observers ${history.forwardedChecked}, refused as forged ${history.forgedRefused}\n`)
  if (history.hidden > 0) process.stdout.write(`tab voters hidden (handed over, shown again later) ${history.hidden}, hand-overs installed ${history.handedOver}\n`)
  if (history.treePlaced > 0) process.stdout.write(`dissemination tree: places taken ${history.treePlaced}, tree watermark messages checked ${history.treeChecked}, messages passed down forged ${history.forgedDown}\n`)
  if (batches > 0) process.stdout.write(`batches sealed ${batches} for ${minted} minted thunks (${(minted / batches).toFixed(2)} per batch); restarts resuming inside a batch ${insideBatch}\n`)
  process.stdout.write(`history: GC steps ${history.gcSteps} (${history.gcPartial} stopped at their limit; batches removed ${history.gcBatches}, exactly-once records ${history.gcRecords}); retries refused as expired ${history.expired}; snapshots installed ${history.snapshots} (request retries ${history.snapshotRetries}); chunks corrupted on the wire ${history.corruptedChunks}, snapshots refused for a digest mismatch ${history.snapshotMismatches}; snapshots forged on the wire ${history.forgedSnapshots}, refused as no majority vouched ${history.outvoted}; replicas wiped ${history.wipes}; voters gone for good while a replica was behind ${history.retired}, every voter of its epoch ${history.allRetired} (decisions taken from non-voters by their proofs ${history.relayedDecisions}; forged decisions sent ${history.forgedDecisions}, real ones replayed ${history.replayedDecisions}, refused as forged ${history.refusedDecisions}, ignored as old or refused as unproved ${history.staleDecisions}); clients revoked ${history.revokedClients}, revocations installed ${history.revocationsInstalled}; calls forged on the wire ${history.forgedCalls}, answered as refused ${history.refusedCalls}; stores changed behind their replica ${history.plants}, found out ${history.damaged}, replicas healed ${history.healed}; storage faults ${history.storageFaults} (damaged batch records found ${history.batchDamage}, damaged state found ${history.stateDamage})\n`)
  if (history.partitionedMinted > 0) process.stdout.write(`partitioned seeds: thunks minted ${history.partitionedMinted}, received by observers of some partitions ${history.partialThunks}; spans refused ${history.spansRefused}, projections refused ${history.projectionsRefused}\n`)
  if (history.voterThunks > 0) process.stdout.write(`partial replication: thunks received by voters ${history.voterThunks} (${(history.voterThunks / Math.max(1, history.partialMinted)).toFixed(2)} per thunk minted in those seeds), tails taken ${history.tailsTaken}\n`)
  if (failover.length > 0) process.stdout.write(`voter killed for good -> strict read returns (virtual ms): p50 ${pct(failover, 0.5)}, p99 ${pct(failover, 0.99)}, max ${Math.max(...failover)} over ${failover.length} kills\n`)
  if (firstFailing !== undefined) {
    process.stdout.write(`replay the first failing seed: pnpm sim --seeds 1 --start ${firstFailing} ${o.voters === undefined ? "" : `--voters ${o.voters} `}${o.observers === undefined ? '' : `--observers ${o.observers} `}--txns ${o.txns} --faults ${o.faults}\n`)
  }
  process.stdout.write(`seeds: ${o.seeds}, histories checked: ${o.seeds}, violations: ${violations}, txns committed: ${committed}\n`)
  return violations > 0 ? 1 : 0
}

process.exitCode = await main()
