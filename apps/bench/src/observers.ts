import '@tideline/net-libp2p'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { NetPeer, createNodeLibp2p, type NetClient } from '@tideline/net-libp2p'
import { MemoryStore } from '@tideline/core'
import { startLocalGroup, waitQuiescent, waitUntil, type ProcessGroup } from '@tideline/test-kit'
import { simRegistry } from '@tideline/sim'
import { processCpuMs, quantile } from './closed-loop.js'
import { clients, pace, transfers } from './partitions.js'

export interface ObserversBenchOptions {
  /** Offered load, transactions per second (paced, open loop over `clients` callers). */
  readonly rate: number
  readonly seconds: number
  readonly clients: number
  readonly accounts: number
  /** The observer counts, one group each. */
  readonly counts: readonly number[]
}

export interface ObserversPoint {
  readonly observers: number
  readonly txnPerSec: number
  readonly failed: number
  /** What the 3 relays sent in the window (direct frames before Noise and muxing, plus watermark gossip published), per transaction, summed over the relays. */
  readonly bytesOutPerTxn: number
  readonly messagesOutPerTxn: number
  /** Relay CPU in the window per transaction, summed over the relays. */
  readonly cpuMsPerTxn: number
  /** The bench process's CPU in the window per transaction: the callers, and the observers (on users' machines, not the relays'). */
  readonly benchCpuMsPerTxn: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Observers that reached the relays' digest once the load stopped (of `observers`). */
  readonly caughtUp: number
  /** Milliseconds from the relays' quiescence until the last observer had their digest. */
  readonly catchUpMs: number
}

const PICK = { count: 1, replicas: 3, depth: 2 }

/**
 * `pnpm bench observers`: 3 relay processes (all voters) under the same paced
 * load of cold transfers, with 0, 16 and 48 observer peers that follow the
 * group (Node peers in this process, each its own libp2p node and memory
 * store, connected to the three relays as a tab is). The relays' outgoing
 * bytes and messages and their CPU per transaction show what each observer
 * costs them; commit p50 what it costs the callers.
 */
export async function benchObservers (o: ObserversBenchOptions, log: (line: string) => void): Promise<ObserversPoint[]> {
  const points: ObserversPoint[] = []
  for (const count of o.counts) {
    points.push(await runWith(o, count))
    log(`  ${count} observers done`)
  }
  return points
}

async function runWith (o: ObserversBenchOptions, count: number): Promise<ObserversPoint> {
  const group: ProcessGroup = await startLocalGroup({ relays: 3, groupId: `bench-observers-${count}` })
  const observers: NetPeer[] = []
  let nodes: NetClient[] = []
  try {
    nodes = await clients(group, o)
    for (let i = 0; i < count; i++) {
      const key = await generateKeyPair('Ed25519')
      observers.push(await NetPeer.start({
        privateKey: key,
        genesis: group.genesis,
        invite: group.invite,
        registry: simRegistry,
        store: new MemoryStore(),
        createNode: async k => await createNodeLibp2p({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true }),
        peers: group.relays.map(r => r.tcp),
        candidate: false
      }))
    }
    // Every observer is followed by the relays before the load starts.
    await waitUntil(`the relays see ${count} observers`, async () => (await Promise.all(group.relays.map(async r => (await r.health()).peers))).every(p => p >= count + 2), 60_000)
    const cpu = async (): Promise<number[]> => await Promise.all([...group.relays.map(async r => await processCpuMs(r.pid)), processCpuMs(process.pid)])
    const sent = async (): Promise<{ bytes: number, messages: number }> => {
      const ms = await Promise.all(group.relays.map(async r => await r.metrics()))
      const sum = (k: string): number => ms.reduce((x, m) => x + (m.get(k) ?? 0), 0)
      return {
        bytes: sum('tideline_bytes_total{dir="out"}') + sum('tideline_bytes_total{dir="gossip-out"}'),
        messages: sum('tideline_messages_total{dir="out"}') + sum('tideline_gossip_messages_total{dir="out"}')
      }
    }
    let cpuAt: number[] = []
    let sentAt = { bytes: 0, messages: 0 }
    const r = await pace(o, nodes, transfers(o, PICK), 0, async () => { [cpuAt, sentAt] = await Promise.all([cpu(), sent()]) })
    const [cpuEnd, sentEnd] = await Promise.all([cpu(), sent()])
    const done = Math.max(1, r.done)
    await waitQuiescent(group.relays, 60_000)
    const target = await group.relays[0]?.health()
    const quiet = performance.now()
    let caughtUp = 0
    await waitUntil('every observer reaches the relays\' digest', async () => {
      caughtUp = observers.filter(x => x.peer.status().digest === target?.digest).length
      return caughtUp === observers.length
    }, 60_000).catch(() => {})
    return {
      observers: count,
      txnPerSec: r.done / o.seconds,
      failed: r.failed,
      bytesOutPerTxn: (sentEnd.bytes - sentAt.bytes) / done,
      messagesOutPerTxn: (sentEnd.messages - sentAt.messages) / done,
      cpuMsPerTxn: cpuEnd.slice(0, -1).reduce((sum, c, i) => sum + c - (cpuAt[i] ?? Number.NaN), 0) / done,
      benchCpuMsPerTxn: ((cpuEnd.at(-1) ?? Number.NaN) - (cpuAt.at(-1) ?? Number.NaN)) / done,
      p50Ms: quantile(r.single, 0.5),
      p99Ms: quantile(r.single, 0.99),
      caughtUp,
      catchUpMs: performance.now() - quiet
    }
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    for (const x of observers) await x.stop().catch(() => {})
    await group.stop().catch(() => {})
  }
}
