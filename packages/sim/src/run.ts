import { MemoryStore, StateDigest, prefixEnd, partitionOf, type PartitionSpec, TS_INFINITY, TS_ZERO, callStatement, canonical, decisionStatement, hash64, timestampPredecessor, toHex, type DamageTarget, type EpochChange, type SubmitRequest, type GroupConfig, type Message, type Timestamp, type Value } from '@tideline/core'
import { checkHistory } from './checker.js'
import { SimClient, type Intent } from './client.js'
import { EventLoop } from './event-loop.js'
import type { History, Op, ReplicaFinal, Violation } from './history.js'
import { INITIAL_BALANCE, accountKey, listKey, simRegistry, type ListMopArgs } from './procedures.js'
import { Rng } from './rng.js'
import { SimKeyring } from './keyring.js'
import { Forwarder } from './forwarder.js'
import { SimPeer } from './sim-peer.js'

export type FaultMode = 'none' | 'net' | 'crash' | 'all'

/** A simulated group's partitions: a key's scope is its first two segments (`acct/a`, `l/g0`). */
const PARTITIONS = (count: number, partial: boolean): PartitionSpec => ({ count, replicas: 3, depth: 2, partial })

export interface SimOptions {
  readonly seed: number
  /** @default 3 */
  readonly voters?: number
  /** @default 1 */
  readonly observers?: number
  /** Client transactions (read-write and read-only) in the run. @default 60 */
  readonly txns?: number
  /** @default 'all' */
  readonly faults?: FaultMode
  /** Clients issuing operations concurrently. @default 6 */
  readonly clients?: number
  /** Partitions (1: none). @default 2 to 5 in one seed in three, else 1 */
  readonly partitions?: number
  /** Busy voters' entries through a hub voter in groups of 4 or more (entry-hub.ts). @default true */
  readonly entryHub?: boolean
  /** Partitioned seeds replicate partially between voters (partitions.partial): always (true), never (false). @default every other partitioned seed */
  readonly partial?: boolean
}

export interface SimStats {
  committed: number
  aborted: number
  failed: number
  unknown: number
  reads: number
  crashes: number
  /** Processes stopped for a while and continued (SIGSTOP/SIGCONT), memory intact. */
  pauses: number
  /** Steps a peer took much later than it asked to be woken (its own stalls, own-stall). */
  ownStalls: number
  /** Times a voter went quiet (quiesce.ts). */
  quiesced: number
  /** Entries the entry hubs relayed (entry-hub.ts). */
  relayedEntries: number
  partitions: number
  messages: number
  dropped: number
  /** Virtual ms from each voter restart until the group watermark moved again. */
  readonly resumeMs: number[]
  /** Virtual ms from each restart until the restarted peer caught up with the others. */
  readonly catchUpMs: number[]
  /** Epoch changes installed (the highest epoch reached). */
  epochs: number
  /** Batches sealed and thunks minted by every coordinator (how much batching happened). */
  batches: number
  minted: number
  /** Restarts whose recovered cursor stood inside a batch. */
  resumedInsideBatch: number
  /** Replicas restarted with an empty store (observers and voters out of the current epoch). */
  wipes: number
  /** Voters gone for the rest of the faults (back only when the run heals) while another replica was down, behind them. */
  retired: number
  /**
   * Runs in which every voter of a down replica's epoch left for good (spare voters took their places)
   * before it came back: it can follow the group only through decisions others pass on, with their proofs.
   */
  allRetired: number
  /** Decisions a replica took from a non-voter with its proof checked, and forged ones sent and refused. */
  relayedDecisions: number
  forgedDecisions: number
  refusedDecisions: number
  /** Real decisions passed on again by a non-voter (as they were, or relabelled as another epoch's); decisions ignored as old, or refused as not proved by the receiver's voters. */
  replayedDecisions: number
  staleDecisions: number
  /** Clients revoked (by a voter, mid-run), and revocations installed. */
  revokedClients: number
  revocationsInstalled: number
  /** Calls forged on the wire (another member's name, a broken signature, none) in seeds of signed calls, and calls every replica refused for it. */
  forgedCalls: number
  refusedCalls: number
  /** Snapshots installed, and snapshot streams a fault cut (a chunk or request dropped, the source crashed). */
  snapshots: number
  snapshotRetries: number
  /** Snapshot chunks corrupted on the wire, and snapshots refused because they did not match their digest. */
  corruptedChunks: number
  snapshotMismatches: number
  /** Stores changed while their replica was down, found out when it opened (state digest), and healed by snapshot. */
  plants: number
  /** Exactly-once records collected, and client retries refused as expired. */
  gcRecords: number
  /** GC steps that stopped at their limit (the pass went on in another step). */
  gcPartial: number
  expired: number
  /** Snapshot exports forged on the wire, and snapshots a majority of the voters did not vouch for. */
  forgedSnapshots: number
  /** Batches a forwarding member passed on to an observer: unaltered, forged, unsigned; and what the observers checked and refused as forged. */
  forwarded: number
  forgedForwarded: number
  unsignedForwarded: number
  forwardedChecked: number
  /** Forged batches and tree watermark messages the observers refused. */
  forgedRefused: number
  /** The dissemination tree: messages passed down forged, places observers took, tree watermark messages checked. */
  forgedDown: number
  treePlaced: number
  treeChecked: number
  /** Tab voters hidden (they handed over) and shown again (asked back), and hand-overs installed. */
  hidden: number
  handedOver: number
  outvoted: number
  damaged: number
  healed: number
  /** Storage faults injected (torn tails, misdirected writes, bit flips), and the damaged batch and state records replicas found. */
  storageFaults: number
  batchDamage: number
  stateDamage: number
  /** Thunks received by observers of some partitions (projections), thunks minted in partitioned seeds; spans refused (late ones, for epochs evaluated), projections refused (by a whole-batch peer: never). */
  partialThunks: number
  /** In partially replicated seeds: thunks received by voters, and tails taken (partial.ts). */
  voterThunks: number
  partialMinted: number
  tailsTaken: number
  partitionedMinted: number
  spansRefused: number
  projectionsRefused: number
  /** GC steps every replica ran, and the batches they removed. */
  gcSteps: number
  gcBatches: number
  /** Virtual ms from killing a voter for good (after the workload) until a strict read through a survivor returned. */
  readonly failoverMs: number[]
  virtualMs: number
}

export interface SimResult {
  readonly seed: number
  readonly history: History
  readonly violations: Violation[]
  readonly stats: SimStats
  /** Digest of every replica's final state and results; equal across replays of a seed. */
  readonly digest: string
}

interface Node {
  readonly id: string
  readonly voter: boolean
  peer: SimPeer | undefined
  store: MemoryStore
  /** Draws this node's store latencies. */
  storeRng: Rng
  gen: number
  up: boolean
  skew: number
  /** Keeps the node down while a fault holds it. */
  downUntil: number
  /** A tab voter hidden by the 'hide' fault: it handed over and does not ask to be a voter until shown. */
  hidden: boolean
}

const TICK_MS = 5
/** Every simulated peer's Ed25519 keys (derived from its id: one cache for every seed). */
const keyring = new SimKeyring()
const CLIENTS = 6
const CLIENT_TIMEOUT_MS = 400
const CLIENT_ATTEMPTS = 4
const QUIESCE_LIMIT_MS = 30_000
/** The simulated failure detector: short, so that crashes and partitions in the schedule trigger epoch changes. */
const SUSPECT_MS = 250
/** Its adaptive floor (suspectMinMs): a busy voter is suspected after about 100 ms of silence, an idle or irregular one later. */
const SUSPECT_MIN_MS = 60
const PROPOSE_TIMEOUT_MS = 60
/** Liveness: with a majority of voters alive and connected, commits resume within this much virtual time of a crash. */
export const LIVENESS_MS = 4 * SUSPECT_MS + 20 * PROPOSE_TIMEOUT_MS

/** Runs one seeded simulation: workload, faults, healing, quiescence, history check. */
export async function runSeed (options: SimOptions): Promise<SimResult> {
  const seed = options.seed
  const faults = options.faults ?? 'all'
  const netFaults = faults === 'net' || faults === 'all'
  const crashFaults = faults === 'crash' || faults === 'all'
  const rng = new Rng(seed)
  const netRng = rng.fork()
  const faultRng = rng.fork()
  const workRng = rng.fork()
  const loop = new EventLoop()
  const stats: SimStats = { committed: 0, aborted: 0, failed: 0, unknown: 0, reads: 0, crashes: 0, pauses: 0, ownStalls: 0, quiesced: 0, relayedEntries: 0, partitions: 0, messages: 0, dropped: 0, resumeMs: [], catchUpMs: [], epochs: 0, batches: 0, minted: 0, resumedInsideBatch: 0, wipes: 0, retired: 0, allRetired: 0, relayedDecisions: 0, forgedDecisions: 0, refusedDecisions: 0, replayedDecisions: 0, staleDecisions: 0, revokedClients: 0, revocationsInstalled: 0, forgedCalls: 0, refusedCalls: 0, snapshots: 0, snapshotRetries: 0, corruptedChunks: 0, snapshotMismatches: 0, plants: 0, damaged: 0, healed: 0, storageFaults: 0, batchDamage: 0, stateDamage: 0, partialThunks: 0, voterThunks: 0, partialMinted: 0, tailsTaken: 0, partitionedMinted: 0, spansRefused: 0, projectionsRefused: 0, gcSteps: 0, gcBatches: 0, gcRecords: 0, gcPartial: 0, expired: 0, forgedSnapshots: 0, forwarded: 0, forgedForwarded: 0, unsignedForwarded: 0, forwardedChecked: 0, forgedRefused: 0, forgedDown: 0, treePlaced: 0, treeChecked: 0, hidden: 0, handedOver: 0, outvoted: 0, failoverMs: [], virtualMs: 0 }
  /** Adds a peer's batching counters to the run's (when it crashes, and at the end). */
  const countBatches = (peer: SimPeer | undefined, observer = false): void => {
    const c = peer?.status().counters
    if (observer) stats.partialThunks += c?.['thunks-received'] ?? 0
    else if (partial) stats.voterThunks += c?.['thunks-received'] ?? 0
    stats.tailsTaken += c?.['tails-taken'] ?? 0
    if (partitioned) stats.partitionedMinted += c?.minted ?? 0
    if (partial) stats.partialMinted += c?.minted ?? 0
    stats.spansRefused += c?.['span-refused'] ?? 0
    stats.projectionsRefused += c?.['projection-refused'] ?? 0
    stats.batches += c?.batches ?? 0
    stats.minted += c?.minted ?? 0
    stats.snapshots += c?.['snapshots-installed'] ?? 0
    stats.snapshotRetries += c?.['snapshot-retry'] ?? 0
    stats.snapshotMismatches += c?.['snapshot-mismatch'] ?? 0
    stats.damaged += c?.['store-damaged'] ?? 0
    stats.batchDamage += c?.['batch-damaged'] ?? 0
    stats.stateDamage += c?.['state-damaged'] ?? 0
    stats.healed += c?.healed ?? 0
    stats.ownStalls += c?.['own-stall'] ?? 0
    stats.quiesced += c?.quiesced ?? 0
    stats.relayedEntries += c?.['entries-relayed'] ?? 0
    stats.gcSteps += c?.['gc-steps'] ?? 0
    stats.gcBatches += c?.['gc-batches-removed'] ?? 0
    stats.gcRecords += c?.['gc-records-removed'] ?? 0
    stats.gcPartial += c?.['gc-steps-partial'] ?? 0
    stats.outvoted += c?.['snapshot-outvoted'] ?? 0
    stats.forwardedChecked += c?.['forwarded-checked'] ?? 0
    stats.forgedRefused += (c?.['forged-batch'] ?? 0) + (c?.['forged-entries'] ?? 0)
    stats.treePlaced += c?.['tree-placed'] ?? 0
    stats.treeChecked += c?.['tw-checked'] ?? 0
    stats.relayedDecisions += c?.['rc-decided-relayed'] ?? 0
    stats.refusedDecisions += c?.['rc-decided-forged'] ?? 0
    stats.staleDecisions += (c?.['rc-decided-replay'] ?? 0) + (c?.['rc-decided-refused'] ?? 0)
  }

  // One seed in three is partitioned (DESIGN §13): 2 to 5 partitions on 6 voters (7 in one such seed in
  // three), in two replica sets. Every account is a scope of its own, the list keys are in three scopes
  // (range reads stay inside one), and the observer follows partition 0 only.
  const partitionCount = options.partitions ?? (seed % 3 === 2 ? 2 + (seed % 4) : 1)
  const partitioned = partitionCount > 1
  const partial = partitioned && (options.partial ?? Math.floor(seed / 3) % 2 === 0)
  const voterIds = Array.from({ length: options.voters ?? (partitioned ? (seed % 9 === 8 ? 7 : 6) : 3) }, (_, i) => `v${i}`)
  // One unpartitioned seed in five has no observer and voters that go quiet after 100 ms idle (quiesce.ts): with
  // an observer to serve, or a candidate, a voter never goes quiet.
  const quietSeed = !partitioned && seed % 5 === 3
  // One unpartitioned seed in three has four observers in the dissemination tree (tree.ts: one slot at the root,
  // two at each observer, so three levels), some of whose messages down the tree are forged on the way.
  const treeSeed = !partitioned && !quietSeed && seed % 3 === 0
  const observerIds = Array.from({ length: options.observers ?? (quietSeed ? 0 : treeSeed ? 4 : 1) }, (_, i) => `o${i}`)
  // One seed in four has as many spare voters as genesis ones, candidates the group admits when a voter
  // is voted out (it never grows past the genesis size): the voters of an epoch can all be gone for good.
  const spareIds = seed % 4 === 1 && options.faults !== 'none' ? voterIds.map((_, i) => `s${i}`) : []
  const votable = [...voterIds, ...spareIds]
  // Exactly-once records expire within a client's retries in two seeds of three: its later retries
  // are refused as expired, or find their record collected unless refused (a client retries for up
  // to 1.6 s); the skew bound is below the clock faults' reach, so coordinators refuse some too.
  const txnRetentionMs = [250, 600, 86_400_000][Math.floor(seed / 3) % 3] as number
  // One seed in five runs only signed calls: every replica checks each call's caller signature.
  const signedCalls = seed % 5 === 2
  const config: GroupConfig = { groupId: `sim-${seed}`, epoch: 0, voters: voterIds, registryHash: simRegistry.hash, txnRetentionMs, txnSkewMs: 300, ...(signedCalls ? { signedCalls } : {}), ...(partitioned ? { partitions: PARTITIONS(partitionCount, partial) } : {}) }

  // --- network faults
  let dropRate = 0
  let dupRate = 0
  /** Snapshot chunks still to corrupt on the wire (one value changed), by the 'corrupt-chunk' fault. */
  let corruptChunks = 0
  /**
   * Snapshot exports still to forge on the wire, by the 'forge-snapshot' fault: one value changed in
   * every chunk of the export and both digests it carries made to match (what a source holding a
   * wrong state, or lying, would send). Only the other voters' state digests can tell.
   */
  let forgeSnapshots = 0
  /** Submissions still to forge on the wire (signed seeds): another member's name, a broken signature, or none. */
  let forgeCalls = 0
  /** Real decisions seen on the wire (the newest few), for the replay fault; clients revoked. */
  const seenDecisions: Array<Extract<Message, { t: 'rc-decided' }>> = []
  const revokedClients = new Set<string>()
  const forgedCalls = new Set<string>()
  const forged = new Map<string, { readonly key: string, readonly old: Value, readonly now: Value }>()
  let partition: Set<string> | undefined
  const isCut = (a: string, b: string): boolean => partition !== undefined && partition.has(a) !== partition.has(b)

  const peerIds = [...votable, ...observerIds]
  const nodes = new Map<string, Node>()
  const clients = new Map<string, SimClient>()

  const broken: string[] = []

  const forge = (chunk: Extract<Message, { t: 'snap-chunk' }>, to: string): void => {
    // One export: its id, its requester and the timestamp it was taken at (a requester that restarted reuses its ids,
    // and an export that was not forged at its first chunk must not be forged later under an old one's entry).
    const exportKey = `${to}|${chunk.id}|${chunk.at}`
    let f = forged.get(exportKey)
    // Only where a vote can tell: with fewer than three other voters in the requester's view, its source's word may be all it has.
    // (and only when the other voters are up and sound: one that heals cannot vouch, and when none can, the source's word is taken).
    const view = nodes.get(to)?.peer?.status().voters ?? []
    const sound = view.filter(v => v !== to).every(v => { const n = nodes.get(v); const st = n?.peer?.status(); return n?.up === true && st !== undefined && !st.healing && !st.snapshotting })
    const voteCanTell = view.filter(v => v !== to).length >= 3 && sound
    // The view shrank while the export was on its way (voters left or were voted out): its last chunk goes as sent, so the
    // forged first one no longer adds up to the digest it carries (refused as a mismatch, not left to a vote that cannot be).
    if (f !== undefined && chunk.last && !voteCanTell) return
    if (f === undefined) {
      const first = chunk.entries[0]
      if (forgeSnapshots === 0 || chunk.chunk !== 0 || first === undefined || chunk.cursor.state === undefined || !voteCanTell) return
      forgeSnapshots--
      stats.forgedSnapshots++
      f = { key: first[0], old: first[1], now: { forged: first[1] } }
      forged.set(exportKey, f)
    }
    const w = chunk as unknown as { entries: Array<[string, Value]>, digest?: string, cursor: { state: [number, number] } }
    const i = w.entries.findIndex(([k]) => k === f.key)
    if (i >= 0) w.entries[i] = [f.key, f.now]
    if (w.digest !== undefined) w.digest = StateDigest.parse(w.digest).dropEntry(f.key, f.old).entry(f.key, f.now).value
    w.cursor.state = StateDigest.restore(w.cursor.state).dropEntry(f.key, f.old).entry(f.key, f.now).lanes
  }

  const deliver = (from: string, to: string, m: Message): void => {
    const node = nodes.get(to)
    if (node !== undefined) {
      if (node.up && node.peer !== undefined) node.peer.receive(from, m)
      return
    }
    clients.get(to)?.receive(m)
  }

  const forwarder = new Forwarder(new Rng(seed ^ 0x5f0f), keyring, config.groupId, loop, deliver)

  const send = (from: string, to: string, m: Message): void => {
    stats.messages++
    if (isCut(from, to) || (netFaults && netRng.chance(dropRate))) {
      stats.dropped++
      return
    }
    const copies = netFaults && netRng.chance(dupRate) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      const tail = netFaults && netRng.chance(0.02) ? netRng.int(20, 150) : 0
      const delay = netRng.int(0, 3) + tail
      const wire = structuredClone(m)
      if (wire.t === 'snap-chunk') forge(wire, to)
      // A parent in the tree that forges some of what it passes down.
      if (treeSeed && netFaults && observerIds.includes(from) && observerIds.includes(to) && (wire.t === 'write' || wire.t === 'tw' || wire.t === 'gap-rep') && netRng.chance(0.03)) forwarder.forgeDown(wire)
      if (i === 0 && netFaults && wire.t === 'write' && observerIds.includes(to) && forwarder.saw(to, wire)) {
        stats.dropped++
        continue
      }
      if (wire.t === 'rc-decided' && wire.proof !== undefined && i === 0 && !seenDecisions.some(d => d.value.epoch === wire.value.epoch)) {
        seenDecisions.push(structuredClone(wire))
        if (seenDecisions.length > 8) seenDecisions.shift()
      }
      if (wire.t === 'submit' && wire.req.caller !== undefined && forgeCalls > 0) {
        // What a member or a coordinator making a call in another's name would send: every replica must refuse it.
        forgeCalls--
        stats.forgedCalls++
        forgedCalls.add(wire.req.clientTxnId)
        const w = wire as unknown as { req: { caller?: { id: string, sig: string } } }
        const c = w.req.caller as { id: string, sig: string }
        const way = forgeCalls % 3
        if (way === 0) w.req.caller = { id: c.id === 'c0' ? 'c1' : 'c0', sig: c.sig }
        else if (way === 1) w.req.caller = { id: c.id, sig: `${c.sig.slice(0, 2) === 'ff' ? '00' : 'ff'}${c.sig.slice(2)}` }
        else delete w.req.caller
      }
      if (wire.t === 'snap-chunk' && wire.entries.length > 0 && corruptChunks > 0) {
        corruptChunks--
        stats.corruptedChunks++
        const entries = wire.entries as Array<[string, unknown]>
        const first = entries[0] as [string, unknown]
        entries[0] = [first[0], { corrupted: first[1] ?? null }]
      }
      loop.after(delay, () => { if (!isCut(from, to)) deliver(from, to, wire) })
    }
  }

  const startPeer = (node: Node): void => {
    const gen = ++node.gen
    const peer = new SimPeer({
      id: node.id,
      config,
      registry: simRegistry,
      store: node.store,
      loop,
      now: () => loop.now + node.skew,
      send: (to, m) => { if (node.gen === gen && node.up) send(node.id, to, m) },
      storeRng: node.storeRng,
      ...(process.env.SIM_LOG === undefined ? {} : { log: (event: string, detail: Record<string, unknown>) => { if (/rc-|epoch|late|recovered|diverged|snapshot|damaged|heal/.test(event) || process.env.SIM_LOG === node.id) process.stderr.write(`${loop.now} ${node.id} ${event} ${JSON.stringify(detail)}\n`) } }),
      broken: what => { if (broken.length < 20) broken.push(`${node.id} at ${loop.now}: ${what.join('; ')}`) },
      suspectMs: SUSPECT_MS,
      suspectMinMs: SUSPECT_MIN_MS,
      proposeTimeoutMs: PROPOSE_TIMEOUT_MS,
      // Every other seed evaluates in runs of a few thunks on a slow disk, so batches grow and
      // runs end (and crashes land) inside them.
      ...(seed % 2 === 0 ? { maxRunThunks: 1 + (seed % 7), storeDelayMs: 12 } : {}),
      // History is collected in every seed, close behind the voters (a crash of a few hundred ms puts
      // a replica behind the horizon, so it catches up by snapshot).
      retainMs: seed % 3 === 0 ? 400 : 80,
      gcIntervalMs: 40,
      scrubIntervalMs: 300,
      // Small steps, so a pass takes several (resumed where the last one stopped).
      gcStepLimit: 3 + (seed % 8),
      // Snapshots of several chunks (a few values each), streamed a window at a time.
      snapshotChunkBytes: [40, 200, 1_000][seed % 3] as number,
      // The genesis voters ask to be voters again after being voted out; the group takes them back.
      candidate: node.voter,
      admitVoter: id => votable.includes(id),
      ...(spareIds.length > 0 ? { maxVoters: voterIds.length } : {}),
      ...(quietSeed ? { quiesceAfterMs: 100 } : {}),
      ...(options.entryHub === false ? { entryHub: false } : {}),
      // Real Ed25519 keys: decisions carry their majority's signatures, and anyone may pass them on.
      signer: keyring.signer(node.id),
      // Every member is reachable (when up), as on a connected network.
      contacts: () => peerIds,
      ...(partitioned && !node.voter ? { partitions: [0] } : {}),
      ...(treeSeed ? { tree: { join: true, slots: 2, rootSlots: 1 } } : {})
    })
    node.peer = peer
    node.up = true
    // The peer schedules its own ticks (nextDue), as a production peer arms its timer.
  }

  for (const id of [...votable, ...observerIds]) {
    const node: Node = { id, voter: votable.includes(id), peer: undefined, store: new MemoryStore({ journal: true }), storeRng: rng.fork(), gen: 0, up: false, skew: 0, downUntil: 0, hidden: false }
    if (netFaults) node.skew = faultRng.int(-80, 80)
    nodes.set(id, node)
  }
  for (const node of nodes.values()) startPeer(node)

  // --- workload
  const history: Op[] = []
  const readOnly = new Set<number>()
  const unexpected: string[] = []
  const accounts = ['a', 'b', 'c', 'd', 'e']
  const listKeys = Array.from({ length: 10 }, (_, i) => partitioned ? `g${Math.floor(i * 3 / 10)}/k${i}` : `k${i}`)
  let remaining = options.txns ?? 60
  let opId = 0
  let appendValue = 0
  const nextIntent = (): Intent | undefined => {
    if (remaining <= 0) return undefined
    remaining--
    const roll = workRng.next()
    if (roll < 0.1) {
      const consistency = workRng.chance(0.7) ? 'strict' : 'snapshot'
      if (workRng.chance(0.5)) {
        // A range of the list keys (every key in it read, present or not: a phantom or a lost key shows as a wrong read).
        const a = workRng.int(0, listKeys.length - 1)
        const b = workRng.int(a + 1, listKeys.length)
        const start = listKeys[a] as string
        // Partitioned: a range stays inside its scope (the keys' group), ending at the group's end at the latest.
        const group = start.slice(0, start.indexOf('/') + 1)
        const end = !partitioned ? listKeys[b] : listKeys[b]?.startsWith(group) === true ? listKeys[b] : prefixEnd(group)
        const keys = listKeys.filter(k => k >= start && (end === undefined || k < end))
        return { kind: 'list-read', keys, range: { start, ...(end === undefined ? {} : { end }), reverse: workRng.chance(0.5) }, consistency }
      }
      const keys = [...new Set([workRng.pick(listKeys), workRng.pick(listKeys), workRng.pick(listKeys)])]
      return { kind: 'list-read', keys, consistency }
    }
    if (roll < 0.55) {
      const mops: ListMopArgs[] = []
      for (let n = workRng.int(1, 4); n > 0; n--) {
        const k = workRng.pick(listKeys)
        mops.push(workRng.chance(0.5) ? { f: 'r', k } : { f: 'append', k, v: ++appendValue })
      }
      return { kind: 'list', mops }
    }
    if (roll < 0.85) {
      const from = workRng.pick(accounts)
      let to = workRng.pick(accounts)
      if (to === from) to = accounts[(accounts.indexOf(from) + 1) % accounts.length] as string
      return { kind: 'transfer', from, to, amount: workRng.int(1, 60) }
    }
    return { kind: 'bank-read', consistency: workRng.chance(0.7) ? 'strict' : 'snapshot' }
  }
  // Even seeds: four times the clients (and a slow disk, above), so coordinators seal batches of many thunks.
  // Quiet seeds: two clients that often pause for a few hundred ms, so the group idles, goes quiet and is woken again.
  for (let i = 0; i < (options.clients ?? (quietSeed ? 2 : seed % 2 === 0 ? 4 * CLIENTS : CLIENTS)); i++) {
    const id = `c${i}`
    clients.set(id, new SimClient({
      id,
      process: i,
      loop,
      rng: workRng.fork(),
      peers: () => peerIds,
      send: (to, m) => { send(id, to, m) },
      record: (op, viaRead) => { history.push(op); if (viaRead) readOnly.add(op.id) },
      accounts,
      timeoutMs: CLIENT_TIMEOUT_MS,
      maxAttempts: CLIENT_ATTEMPTS,
      next: nextIntent,
      nextOpId: () => ++opId,
      thinkMs: () => quietSeed && workRng.chance(0.3) ? workRng.int(200, 700) : workRng.int(0, 60),
      expired: () => { stats.expired++ },
      unexpected: message => { unexpected.push(message) },
      ...(signedCalls ? { sign: (req: SubmitRequest & { readonly firstAt: number }) => ({ ...req, caller: { id, sig: toHex(keyring.signer(id).sign(callStatement(config.groupId, req)) as Uint8Array) } }) } : {}),
      forged: txnId => forgedCalls.has(txnId),
      revoked: () => revokedClients.has(id),
      refusedForged: () => { stats.refusedCalls++ }
    }))
  }
  for (const c of clients.values()) loop.after(workRng.int(0, 20), () => { c.start() })

  // --- fault schedule
  const watermarkOf = (): string | undefined => {
    for (const n of nodes.values()) if (n.up && n.peer !== undefined) return n.peer.status().watermark
    return undefined
  }
  /**
   * Storage faults on a node's store (MemoryStore marks the record damaged: see DamageSet): `torn` the
   * newest batch record of a sequence or the cursor (a torn tail), `misdirected` any held batch or a value (a write
   * that landed elsewhere left the record wrong), `bit-flip` a value or an exactly-once record (a bit
   * flipped on the disk, found on read). Whatever is damaged, an acked batch included, must be found,
   * never used, and repaired.
   */
  const damageStore = (node: Node, kind: 'torn' | 'misdirected' | 'bit-flip'): void => {
    const store = node.store
    const epoch = Math.max(0, ...[...nodes.values()].map(n => n.peer?.status().epoch ?? 0))
    const held: Array<{ coordinator: string, epoch: number, seq: number }> = []
    for (let e = epoch; e >= Math.max(0, epoch - 1); e--) {
      for (const coordinator of nodes.keys()) {
        const found = store.batchRangeSync(coordinator, e, 1, Infinity).batches
        const last = found[found.length - 1]
        if (kind !== 'torn') for (const b of found) held.push({ coordinator, epoch: e, seq: b.seq })
        else if (last !== undefined) held.push({ coordinator, epoch: e, seq: last.seq })
      }
    }
    let values: string[] = []
    let records: string[] = []
    try {
      values = store.entriesSync(TS_INFINITY).map(([k]) => k)
      records = store.exportSnapshotSync(TS_INFINITY).txns.map(([id]) => id)
    } catch {}
    const targets: DamageTarget[] = [
      ...held.map(batch => ({ batch })),
      // The cursor is written with every run: a torn one is found when the replica opens, and it heals.
      ...(kind === 'torn' && !store.damaged.has('m|cursor') && store.getMetaSync('cursor') !== undefined ? [{ meta: 'cursor' }] : []),
      ...(kind === 'torn' ? [] : values.map(value => ({ value }))),
      ...(kind === 'bit-flip' ? records.map(record => ({ record })) : [])
    ]
    if (targets.length === 0) return
    store.damaged.add(faultRng.pick(targets))
    stats.storageFaults++
  }
  /** One replica with storage damage at a time, and only one that may fail: a store fault is a fault of its replica. */
  const mayDamage = (node: Node): boolean => mayCrash(node) && ![...nodes.values()].some(n => n.peer?.damaged === true || n.store.damaged.inState)

  /** A hidden tab voter shown again asks to be voted back in (unless it crashed since: restarted, it asks anyway). */
  const show = (node: Node, peer: SimPeer): void => {
    if (node.peer !== peer || !node.hidden) return
    node.hidden = false
    peer.setCandidate(true)
  }
  const crash = (node: Node, downFor: number, wipe = false, plant = false, disk?: 'torn' | 'misdirected'): void => {
    if (!node.up || node.peer === undefined) return
    node.hidden = false
    stats.crashes++
    countBatches(node.peer, partitioned && !node.voter)
    node.peer.crash()
    node.peer = undefined
    node.up = false
    node.gen++
    node.store = wipe ? new MemoryStore({ journal: true }) : node.store.crashAndRecover()
    if (wipe) stats.wipes++
    if (disk !== undefined) damageStore(node, disk)
    if (plant) {
      // Its disk changes while it is down: a key nobody wrote appears below its cursor.
      // (not over a cursor the disk damaged: the replica heals that one first)
      const cursor = node.store.damaged.has('m|cursor') ? undefined : node.store.getMetaSync('cursor') as { last: Timestamp } | undefined
      if (cursor !== undefined && cursor.last !== TS_ZERO) {
        node.store.writeSync({ settle: [{ ts: timestampPredecessor(cursor.last), outcome: { status: 'committed', value: null }, writes: [[`planted/${stats.plants}`, 1]] }] })
        stats.plants++
      }
    }
    node.storeRng = rng.fork()
    node.downUntil = loop.now + downFor
    loop.after(downFor, () => { restart(node) })
  }
  const restart = (node: Node): void => {
    if (node.up || loop.now < node.downUntil) return
    const restartedAt = loop.now
    const before = watermarkOf()
    const othersEvaluated = Math.max(0, ...[...nodes.values()].filter(n => n !== node && n.up).map(n => n.peer?.status().evaluated ?? 0))
    startPeer(node)
    if (node.peer?.insideBatch === true) stats.resumedInsideBatch++
    if (node.voter) {
      const watch = (): void => {
        const now = watermarkOf()
        if (now !== undefined && before !== undefined && now > before) { stats.resumeMs.push(loop.now - restartedAt); return }
        if (loop.now - restartedAt < QUIESCE_LIMIT_MS) loop.after(TICK_MS, watch)
      }
      loop.after(TICK_MS, watch)
    }
    const caught = (): void => {
      if (!node.up || node.peer === undefined) return
      if (node.peer.status().evaluated >= othersEvaluated) { stats.catchUpMs.push(loop.now - restartedAt); return }
      if (loop.now - restartedAt < QUIESCE_LIMIT_MS) loop.after(TICK_MS, caught)
    }
    loop.after(TICK_MS, caught)
  }

  /** The nodes that are voters in the newest epoch any live peer installed. */
  const currentVoters = (): Node[] => {
    let best: { epoch: number, voters: readonly string[] } | undefined
    for (const n of nodes.values()) {
      const st = n.peer?.status()
      if (n.up && st !== undefined && (best === undefined || st.epoch > best.epoch)) best = st
    }
    const ids = best?.voters ?? voterIds
    return [...nodes.values()].filter(n => ids.includes(n.id))
  }
  /** Keep a majority of the current voters up (more only stalls longer), and a voter that is not current may always go. */
  const mayCrash = (node: Node): boolean => {
    if (!node.up) return false
    const current = currentVoters()
    if (!current.includes(node)) return true
    const isDown = (n: Node): boolean => !n.up || n.peer?.paused === true
    const down = current.filter(isDown).length
    if (down + 1 > Math.floor((current.length - 1) / 2)) return false
    // Partial replication: each replica set's storers (its placed voters and the unplaced ones) keep a majority up too.
    if (!partial) return true
    const sets = Math.max(1, Math.floor(voterIds.length / 3))
    const setOf = (id: string): number | undefined => voterIds.includes(id) ? voterIds.indexOf(id) % sets : undefined
    const mine = setOf(node.id)
    for (let j = 0; j < sets; j++) {
      if (mine !== undefined && mine !== j) continue
      const storers = current.filter(n => setOf(n.id) === undefined || setOf(n.id) === j)
      if (storers.length === 0) continue
      if (storers.filter(isDown).length + 1 > Math.floor((storers.length - 1) / 2)) return false
    }
    return true
  }

  const pickOf = (xs: readonly Node[]): Node | undefined => xs.length === 0 ? undefined : faultRng.pick(xs)
  let faultsOn = faults !== 'none'
  const scheduleFault = (): void => {
    if (!faultsOn) return
    loop.after(faultRng.int(20, 200), () => {
      if (!faultsOn) return
      const kinds: string[] = []
      if (netFaults) kinds.push('drop', 'partition', 'skew', 'step-back')
      if (crashFaults) kinds.push('crash', 'pause', 'crash-mid-write', 'crash-during-change', 'dueling', 'wipe', 'plant', 'retire')
      if (netFaults) kinds.push('corrupt-chunk', 'forge-snapshot', 'forge-decision', 'replay-decision')
      if (crashFaults) kinds.push('revoke', 'torn-tail', 'misdirected', 'bit-flip', 'hide')
      if (netFaults && signedCalls) kinds.push('forge-call')
      if (crashFaults && netFaults) kinds.push('isolate')
      const kind = faultRng.pick(kinds)
      if (kind === 'drop') {
        dropRate = faultRng.chance(0.4) ? 0 : faultRng.next() * 0.2
        dupRate = faultRng.next() * 0.05
      } else if (kind === 'partition' && partition === undefined) {
        const side = new Set(peerIds.filter(() => faultRng.chance(0.4)))
        if (side.size > 0 && side.size < peerIds.length) {
          stats.partitions++
          partition = side
          loop.after(faultRng.int(30, 600), () => { partition = undefined })
        }
      } else if (kind === 'skew') {
        faultRng.pick([...nodes.values()]).skew = faultRng.int(-150, 150)
      } else if (kind === 'step-back') {
        faultRng.pick([...nodes.values()]).skew -= faultRng.int(10, 400)
      } else if (kind === 'crash') {
        const node = faultRng.pick([...nodes.values()])
        if (mayCrash(node)) crash(node, faultRng.chance(0.3) ? faultRng.int(2 * SUSPECT_MS, 8 * SUSPECT_MS) : faultRng.int(20, 700))
      } else if (kind === 'pause') {
        // The process stops and goes on (SIGSTOP/SIGCONT, a long GC, a frozen tab) with its memory whole: shorter
        // or longer than the failure detector's bounds. Coming back, it must not blame the others for its own silence.
        const node = faultRng.pick([...nodes.values()])
        const peer = node.peer
        if (peer !== undefined && !peer.paused && mayCrash(node)) {
          stats.pauses++
          peer.pause()
          loop.after(faultRng.chance(0.5) ? faultRng.int(20, SUSPECT_MS) : faultRng.int(SUSPECT_MS, 6 * SUSPECT_MS), () => { peer.resume() })
        }
      } else if (kind === 'plant') {
        // A replica's store is changed behind its back while it is down: it must find out when it opens and heal
        // (one at a time: with a majority of the voters damaged at once there is no good state left to heal from).
        const node = faultRng.pick([...nodes.values()])
        const healedSoFar = stats.healed + [...nodes.values()].reduce((n, x) => n + (x.up ? x.peer?.status().counters.healed ?? 0 : 0), 0)
        if (stats.plants === healedSoFar && mayCrash(node)) crash(node, faultRng.int(20, 700), false, true)
      } else if (kind === 'retire' && stats.retired === 0 && spareIds.length === 0) {
        // A voter leaves for good (it returns only when the run heals, so the checks can see every replica)
        // while another replica is down: that one comes back behind a voter it will never hear from, and
        // must catch up from the others (its batches and decisions, or a snapshot once they collected them).
        const behind = [...nodes.values()].some(n => !n.up)
        const node = faultRng.pick(currentVoters())
        if (behind && node !== undefined && mayCrash(node)) {
          stats.retired++
          crash(node, Number.POSITIVE_INFINITY)
        }
      } else if (kind === 'forge-decision') {
        // A member that is never a voter (voters are trusted to follow the protocol: their word needs no proof) sends
        // a replica the next epoch's decision naming itself the only voter, with a proof that names the replica's
        // voters but carries the forger's own signatures: it must be refused.
        const forger = pickOf([...nodes.values()].filter(n => n.up && !n.voter))
        const target = pickOf([...nodes.values()].filter(n => n.up && n !== forger))
        const st = target?.peer?.status()
        if (forger !== undefined && target !== undefined && st !== undefined) {
          const value: EpochChange = { epoch: st.epoch + 1, voters: [forger.id], cuts: [], floor: st.watermark, batches: [] }
          const ballot = { n: 1_000_000, by: forger.id }
          const sig = toHex(keyring.signer(forger.id).sign(decisionStatement(config.groupId, st.epoch, ballot, value)) as Uint8Array)
          stats.forgedDecisions++
          send(forger.id, target.id, { t: 'rc-decided', value, proof: { ballot, sigs: st.voters.map(voter => ({ voter, sig })) } })
        }
      } else if (kind === 'replay-decision') {
        // A member that is never a voter passes a real decision on again: to a replica behind, it is the next one
        // (taken by its proof); to one ahead, an old one (ignored). Relabelled as another epoch's, its proof no
        // longer holds (the signatures cover the epoch): it must be refused.
        const replayer = pickOf([...nodes.values()].filter(n => n.up && !n.voter))
        const target = pickOf([...nodes.values()].filter(n => n.up && n !== replayer))
        const d = seenDecisions.length === 0 ? undefined : faultRng.pick(seenDecisions)
        const st = target?.peer?.status()
        if (replayer !== undefined && target !== undefined && d !== undefined && st !== undefined) {
          stats.replayedDecisions++
          const relabel = faultRng.chance(0.5) && d.value.epoch !== st.epoch + 1
          send(replayer.id, target.id, relabel ? { ...d, value: { ...d.value, epoch: st.epoch + 1 } } : d)
        }
      } else if (kind === 'revoke' && stats.revokedClients === 0) {
        // A voter revokes a client mid-run (an admin's request): from the epoch change that holds it, the voters
        // refuse its submissions (and in a group of signed calls every replica refuses its calls). What it had in
        // flight may still have taken effect: its later attempts end unknown, never as wrong answers.
        const voter = pickOf(currentVoters().filter(n => n.up && n.peer !== undefined))
        const client = [...clients.keys()][faultRng.int(0, clients.size - 1)]
        if (voter?.peer !== undefined && client !== undefined) {
          stats.revokedClients++
          revokedClients.add(client)
          voter.peer.revoke([{ kind: 'peer', id: client }], 5_000, err => { if (err === undefined) stats.revocationsInstalled++ })
        }
      } else if (kind === 'forge-call') {
        forgeCalls = faultRng.int(1, 3)
      } else if (kind === 'forge-snapshot') {
        // The next snapshot export on the wire is forged consistently: a majority of the voters must refuse it.
        forgeSnapshots = 1
      } else if (kind === 'corrupt-chunk') {
        // The next snapshot chunks on the wire arrive with one value changed: the receiver must refuse them.
        corruptChunks = faultRng.int(1, 2)
      } else if (kind === 'wipe') {
        // An observer loses its disk and starts empty (a voter's acks and promises must survive, and a
        // voted-out voter may be voted in again at any moment). It catches up by snapshot.
        const up = [...nodes.values()].filter(n => n.up && !n.voter)
        if (up.length > 0) crash(faultRng.pick(up), faultRng.int(20, 700), true)
      } else if (kind === 'crash-mid-write') {
        // A coordinator dies with thunks on the wire: the epoch change keeps or aborts each one.
        const node = [...nodes.values()].find(n => n.up && (n.peer?.status().inflight ?? 0) > 0)
        if (node !== undefined && mayCrash(node)) crash(node, faultRng.int(2 * SUSPECT_MS, 8 * SUSPECT_MS))
      } else if (kind === 'crash-during-change') {
        // A voter dies while an epoch change is under way (someone is sealed).
        if ([...nodes.values()].some(n => n.up && n.peer?.status().sealed === true)) {
          const node = faultRng.pick(currentVoters())
          if (node !== undefined && mayCrash(node)) crash(node, faultRng.int(20, 8 * SUSPECT_MS))
        }
      } else if (kind === 'hide') {
        // A tab voter whose page is hidden (docs/design/tabs.md §3): it stops asking to be a voter and hands over
        // (leave). One time in three the browser freezes it right after, so its leave is under way while it is
        // silent. Shown again later, it asks to be voted back in. A crash ends it (a restarted peer asks at once).
        // A hand-over is no crash: a voter may hide whenever the others are up (two voters may both be hiding; the one
        // left, leaving, hands over to the first that asks back), and is frozen only where it may crash.
        const current = currentVoters()
        const node = pickOf(current.filter(n => n.up && n.peer !== undefined && !n.peer.paused && !n.hidden))
        const peer = node?.peer
        const othersUp = current.every(n => n === node || (n.up && n.peer?.paused !== true))
        if (node !== undefined && peer !== undefined && current.length >= 2 && (othersUp || mayCrash(node))) {
          stats.hidden++
          node.hidden = true
          peer.setCandidate(false)
          peer.leave(4 * SUSPECT_MS, err => { if (err === undefined) stats.handedOver++ })
          if (mayCrash(node) && faultRng.chance(1 / 3)) {
            peer.pause()
            loop.after(faultRng.int(SUSPECT_MS, 6 * SUSPECT_MS), () => { peer.resume() })
          }
          loop.after(faultRng.int(50, 8 * SUSPECT_MS), () => { show(node, peer) })
        }
      } else if (kind === 'isolate' && partition === undefined) {
        // A partitioned proposer: one voter alone suspects everyone and proposes, and can never win.
        const node = faultRng.pick(currentVoters())
        if (node !== undefined) {
          stats.partitions++
          partition = new Set([node.id])
          loop.after(faultRng.int(2 * SUSPECT_MS, 6 * SUSPECT_MS), () => { partition = undefined })
        }
      } else if (kind === 'torn-tail' || kind === 'misdirected') {
        // The store is damaged while its replica is down: found when it recovers (batches) or reads (values).
        const node = faultRng.pick([...nodes.values()])
        if (mayDamage(node)) crash(node, faultRng.int(20, 700), false, false, kind === 'torn-tail' ? 'torn' : 'misdirected')
      } else if (kind === 'bit-flip') {
        // A record goes bad under a running replica: found by the next read of it, or the next scrub.
        const node = faultRng.pick([...nodes.values()])
        if (node.up && mayDamage(node)) damageStore(node, 'bit-flip')
      } else if (kind === 'dueling') {
        // Two concurrent proposals for the same epoch: they must agree on one value.
        const up = currentVoters().filter(n => n.up)
        const a = faultRng.pick(up)
        const b = faultRng.pick(up)
        a?.peer?.requestEpochChange()
        b?.peer?.requestEpochChange()
      }
      scheduleFault()
    })
  }
  scheduleFault()

  /**
   * Spare seeds: a replica goes down, then every voter of its epoch leaves for good, one at a time (each
   * replaced by a spare before the next goes). It comes back to an epoch whose voters it will never hear
   * from: it must ask its contacts, follow the decisions they pass on (checked by their proofs) to the
   * present, and catch up (by snapshot once the history it needs is collected).
   */
  let retiring: { readonly behind: Node, readonly voters: readonly string[] } | undefined
  const retireAll = (): void => {
    if (!faultsOn) return
    if (retiring === undefined) {
      // An observer (the spares are the voters' replacements).
      const behind = pickOf([...nodes.values()].filter(n => n.up && !n.voter))
      const voters = behind?.peer?.status().voters
      if (behind === undefined || voters === undefined) { loop.after(50, retireAll); return }
      retiring = { behind, voters }
      crash(behind, Number.POSITIVE_INFINITY)
    }
    const gone = retiring.voters.map(id => nodes.get(id) as Node)
    const next = gone.find(n => n.up)
    if (next !== undefined) {
      if (mayCrash(next)) crash(next, Number.POSITIVE_INFINITY)
    } else if (!currentVoters().some(n => gone.includes(n))) {
      // Every voter of its epoch is gone and out of the group: it comes back.
      stats.allRetired++
      retiring.behind.downUntil = 0
      restart(retiring.behind)
      return
    }
    loop.after(SUSPECT_MS, retireAll)
  }
  if (spareIds.length > 0 && crashFaults) loop.after(faultRng.int(50, 300), retireAll)

  const allClientsDone = (): boolean => [...clients.values()].every(c => c.done)
  // (and the spare seeds' scenario played out, or given up when other faults left too few voters to finish it)
  let doneAt: number | undefined
  loop.run(() => {
    if (!allClientsDone()) return false
    doneAt ??= loop.now
    return retiring === undefined || retiring.behind.up || loop.now > doneAt + 20 * SUSPECT_MS
  }, 120_000)

  // --- heal and wait for quiescence
  faultsOn = false
  dropRate = 0
  dupRate = 0
  partition = undefined
  for (const node of nodes.values()) {
    node.downUntil = 0
    if (!node.up) restart(node)
    else if (node.peer !== undefined) show(node, node.peer)
  }
  const quiescent = (): boolean => {
    const ns = [...nodes.values()]
    if (!ns.every(n => n.up && n.peer !== undefined)) return false
    const st = ns.map(n => (n.peer as SimPeer).status())
    const first = st[0]
    if (first === undefined) return true
    // Every replica in one epoch whose voters are all the genesis voters again (rejoined), evaluated through every older epoch.
    // (with spares: as many voters as at genesis, of those that may vote)
    const settled = (v: readonly string[]): boolean => spareIds.length === 0 ? voterIds.every(id => v.includes(id)) : v.length === voterIds.length
    if (!st.every(s => s.epoch === first.epoch && !s.sealed && settled(s.voters))) return false
    if (!ns.every(n => (n.peer as SimPeer).evaluatingCurrentEpoch)) return false
    // Storage faults found and repaired (a scrub finds a value nothing read since it was damaged).
    if (ns.some(n => n.store.damaged.inState || (n.peer as SimPeer).damaged)) return false
    // Partitioned, replicas evaluate different thunks: each is through all of them once its frontier passed every one evaluated anywhere.
    const lastAnywhere = st.reduce((m, s) => s.lastEvaluated > m ? s.lastEvaluated : m, first.lastEvaluated)
    const through = (s: typeof first): boolean => partitioned ? s.frontier > lastAnywhere : s.evaluated === first.evaluated && s.lastEvaluated === first.lastEvaluated && s.frontier > s.lastEvaluated
    if (!st.every(s => !s.healing && !s.snapshotting && s.inflight === 0 && s.unevaluated === 0 && through(s) && s.watermark > s.lastEvaluated)) return false
    // every replica holds every coordinator's whole sequence
    const seqs = ns.map(n => (n.peer as SimPeer).sequences())
    return first.voters.every(v => seqs.every(s => s[v]?.have === seqs[0]?.[v]?.have && s[v]?.evalNext === (s[v]?.have ?? 0) + 1))
  }
  let quiet = loop.run(quiescent, loop.now + QUIESCE_LIMIT_MS)
  const livenessViolations: Violation[] = []
  if (quiet && crashFaults) {
    // Liveness: kill one voter for good; a strict read through a survivor needs the watermark to move again.
    const victim = faultRng.pick(currentVoters())
    const survivor = [...nodes.values()].find(n => n !== victim && n.voter && n.up)
    if (victim !== undefined && survivor?.peer !== undefined) {
      const killedAt = loop.now
      crash(victim, Number.POSITIVE_INFINITY)
      let readDone = false
      let readError: string | undefined
      survivor.peer.read([listKey(listKeys[0] as string)], { consistency: 'strict', timeoutMs: LIVENESS_MS }, err => { readError = err?.name; readDone = true })
      loop.run(() => readDone, loop.now + LIVENESS_MS + 100)
      if (!readDone || readError !== undefined) {
        livenessViolations.push({ kind: 'liveness', message: `with ${victim.id} killed and a majority alive, a strict read through ${survivor.id} did not return within ${LIVENESS_MS} virtual ms (${readError ?? 'pending'})` })
      } else {
        stats.failoverMs.push(loop.now - killedAt)
      }
      // It comes back, rejoins as an observer and is voted in again.
      victim.downUntil = 0
      restart(victim)
      quiet = loop.run(quiescent, loop.now + QUIESCE_LIMIT_MS)
    }
  }
  stats.virtualMs = loop.now
  stats.forwarded = forwarder.stats.forwarded
  stats.forgedForwarded = forwarder.stats.forgedForwarded
  stats.unsignedForwarded = forwarder.stats.unsignedForwarded
  stats.forgedDown = forwarder.stats.forgedDown
  for (const n of nodes.values()) countBatches(n.peer, partitioned && !n.voter)
  stats.epochs = Math.max(0, ...[...nodes.values()].map(n => n.peer?.status().epoch ?? 0))

  // --- finals
  const finals: ReplicaFinal[] = []
  for (const node of nodes.values()) {
    const peer = node.peer
    if (peer === undefined) continue
    const holding = peer.holding()
    const holdsKey = (k: string): boolean => holding === undefined || holding.includes(partitionOf(k, config.partitions as PartitionSpec))
    const entries = peer.snapshot().filter(([k]) => holdsKey(k))
    const lists: Record<string, number[]> = {}
    const balances: Record<string, number> = {}
    for (const a of accounts) if (holdsKey(accountKey(a))) balances[a] = INITIAL_BALANCE
    for (const [k, v] of entries) {
      if (k.startsWith('l/')) lists[k.slice(2)] = v as number[]
      else if (k.startsWith('acct/')) balances[k.slice(5)] = v as number
    }
    const st = peer.status()
    const holds = holding === undefined ? undefined : { lists: listKeys.filter(k => holdsKey(listKey(k))), accounts: accounts.filter(a => holdsKey(accountKey(a))), tag: holding.join('.') }
    finals.push({ peer: node.id, lists, balances, stateDigest: hash64(canonical(entries)), resultDigest: st.digest, evaluatedThrough: st.lastEvaluated, ...(holds === undefined ? {} : { holds }) })
  }
  for (const node of nodes.values()) node.peer?.close()

  history.sort((a, b) => a.id - b.id)
  for (const op of history) {
    if (readOnly.has(op.id)) { if (op.outcome === 'ok') stats.reads++; continue }
    if (op.outcome === 'ok') stats.committed++
    else if (op.outcome === 'fail') { if (op.kind === 'transfer') stats.aborted++; else stats.failed++ }
    else stats.unknown++
  }
  const h: History = { ops: history, bankTotal: INITIAL_BALANCE * accounts.length, accounts, finals }
  const violations = checkHistory(h)
  violations.push(...livenessViolations)
  for (const message of unexpected) violations.push({ kind: 'unexpected-abort', message })
  for (const message of broken) violations.push({ kind: 'invariant', message })
  if (faults === 'none') {
    // Without faults every operation completes: a read that failed or an outcome left unknown is a liveness bug.
    const stuck = history.filter(op => op.outcome === 'info' || (readOnly.has(op.id) && op.outcome !== 'ok'))
    if (stuck.length > 0) violations.push({ kind: 'liveness', message: `with no faults, ${stuck.length} operation(s) did not complete (first: op ${stuck[0]?.id}, ${stuck[0]?.kind})`, ops: stuck.slice(0, 5).map(op => op.id) })
  }
  if (!quiet) {
    const st = [...nodes.values()].map(n => n.peer === undefined ? `${n.id}: down` : `${n.id}: ${JSON.stringify({ ...n.peer.status(), counters: undefined })}`)
    violations.push({ kind: 'liveness', message: `the group did not quiesce within ${QUIESCE_LIMIT_MS} ms of healing: ${st.join('; ')}` })
  }
  for (const n of nodes.values()) {
    const failed = n.peer?.status().failed
    if (failed !== undefined) violations.push({ kind: 'liveness', message: `${n.id} failed: ${failed}` })
    // Deterministic procedures never trip the peers' own digest comparison (a false alarm is a violation too).
    const diverged = n.peer?.status().diverged
    if (diverged !== undefined) violations.push({ kind: 'divergence', message: `${n.id} reported divergence from ${diverged.peer} at ${diverged.count}` })
  }
  const digest = hash64(finals.map(f => `${f.peer}:${f.stateDigest}:${f.resultDigest}`).join('|'))
  return { seed, history: h, violations, stats, digest }
}
