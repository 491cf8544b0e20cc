import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import { MemoryStore, Peer, createRegistry, type GroupConfig, type Message } from '@tideline/core'
import { transferProcedures } from './transfer-procedures.js'

export interface CoreBenchOptions {
  readonly voters: number
  readonly clients: number
  readonly seconds: number
  readonly accounts: number
}

export interface CoreBenchResult {
  readonly txnPerSec: number
  readonly committed: number
  readonly aborted: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly messages: number
}

/**
 * The protocol alone: voters in one process, messages handed over with zero
 * delay (batched per event-loop turn), MemoryStore, closed-loop clients
 * doing 2-key transfers through random voters.
 */
export async function benchCore (o: CoreBenchOptions): Promise<CoreBenchResult> {
  const registry = createRegistry(transferProcedures)
  const hash = registry.procedures.get('transfer')?.hash ?? ''
  const ids = Array.from({ length: o.voters }, (_, i) => `v${i}`)
  const config: GroupConfig = { groupId: 'bench', epoch: 0, voters: ids, registryHash: registry.hash }
  const peers = new Map<string, Peer>()
  let queue: Array<[string, string, Message]> = []
  let messages = 0
  const pump = (): void => {
    const batch = queue
    queue = []
    for (const [from, to, m] of batch) peers.get(to)?.receive(from, m)
  }
  const clock = { now: () => Date.now() }
  for (const id of ids) {
    peers.set(id, await Peer.open({
      id,
      config,
      registry,
      // Real stores answer in a later turn of the event loop; so does this one, which lets batches form.
      store: new MemoryStore({ delay: () => new Promise<void>(resolve => { setImmediate(resolve) }) }),
      clock,
      send: (to, m) => {
        messages++
        if (queue.length === 0) setImmediate(pump)
        queue.push([id, to, m])
      }
    }))
  }
  const ticker = setInterval(() => { for (const p of peers.values()) p.tick() }, 5)
  const voters = [...peers.values()]
  let running = true
  let measuring = false
  let committed = 0
  let aborted = 0
  const latencies: number[] = []
  let n = 0
  const client = async (c: number): Promise<void> => {
    let i = 0
    while (running) {
      const from = Math.floor(Math.random() * o.accounts)
      let to = Math.floor(Math.random() * o.accounts)
      if (to === from) to = (to + 1) % o.accounts
      const peer = voters[(c + i++) % voters.length] as Peer
      const t0 = performance.now()
      const r = await peer.submit({ clientTxnId: `c${c}-${n++}`, procedure: 'transfer', hash, args: { from, to } })
      if (!measuring) continue
      latencies.push(performance.now() - t0)
      if (r.status === 'committed') committed++
      else aborted++
    }
  }
  const all = Array.from({ length: o.clients }, (_, c) => client(c))
  await new Promise(resolve => setTimeout(resolve, 1000))
  measuring = true
  const start = performance.now()
  const m0 = messages
  await new Promise(resolve => setTimeout(resolve, o.seconds * 1000))
  measuring = false
  const elapsed = (performance.now() - start) / 1000
  const m1 = messages
  running = false
  await Promise.all(all)
  clearInterval(ticker)
  if (process.env.BENCH_DEBUG !== undefined) for (const p of peers.values()) process.stderr.write(`${p.id} ${JSON.stringify(p.status().counters)}\n`)
  for (const p of peers.values()) await p.close()
  latencies.sort((a, b) => a - b)
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  const done = committed + aborted
  return { txnPerSec: done / elapsed, committed, aborted, p50Ms: at(0.5), p99Ms: at(0.99), messages: (m1 - m0) / Math.max(1, done) }
}

/**
 * The same group with each voter on its own worker thread (still one
 * process), as a deployment runs one voter per process: messages cross
 * threads as structured-cloned batches, one per destination per turn.
 */
export async function benchCoreThreaded (o: CoreBenchOptions): Promise<CoreBenchResult> {
  const ids = Array.from({ length: o.voters }, (_, i) => `v${i}`)
  const ports = new Map<string, Record<string, MessagePort>>(ids.map(id => [id, {}]))
  for (let i = 0; i < ids.length; i++) {
    for (let j = i + 1; j < ids.length; j++) {
      const { port1, port2 } = new MessageChannel()
      ;(ports.get(ids[i] as string) as Record<string, MessagePort>)[ids[j] as string] = port1
      ;(ports.get(ids[j] as string) as Record<string, MessagePort>)[ids[i] as string] = port2
    }
  }
  const entry = new URL('./core-voter.ts', import.meta.url).href
  const workers = ids.map((id, i) => new Worker(new URL('./worker-bootstrap.mjs', import.meta.url), {
    workerData: { entry, id, voters: ids, accounts: o.accounts, clients: Math.floor(o.clients / ids.length) + (i < o.clients % ids.length ? 1 : 0) },
    execArgv: ['--conditions=@tideline/source']
  }))
  const next = (w: Worker, type: string): Promise<any> => new Promise(resolve => {
    const on = (m: { type: string }): void => { if (m.type === type) { w.off('message', on); resolve(m) } }
    w.on('message', on)
  })
  const ready = workers.map(w => next(w, 'ready'))
  workers.forEach((w, i) => {
    const p = ports.get(ids[i] as string) as Record<string, MessagePort>
    w.postMessage({ type: 'init', ports: p }, Object.values(p))
  })
  await Promise.all(ready)
  await new Promise(resolve => setTimeout(resolve, 1000))
  for (const w of workers) w.postMessage({ type: 'measure' })
  const start = performance.now()
  await new Promise(resolve => setTimeout(resolve, o.seconds * 1000))
  const stats = workers.map(w => next(w, 'stats'))
  for (const w of workers) w.postMessage({ type: 'stop' })
  const all = await Promise.all(stats) as Array<{ committed: number, aborted: number, latencies: number[] }>
  const elapsed = (performance.now() - start) / 1000
  await Promise.all(workers.map(w => w.terminate()))
  const latencies = all.flatMap(s => s.latencies).sort((a, b) => a - b)
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  const committed = all.reduce((n, s) => n + s.committed, 0)
  const aborted = all.reduce((n, s) => n + s.aborted, 0)
  return { txnPerSec: (committed + aborted) / elapsed, committed, aborted, p50Ms: at(0.5), p99Ms: at(0.99), messages: 0 }
}
