import { MemoryStore, Peer, createRegistry, type GroupConfig, type Message, type Tx } from '@tideline/core'

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

const procedures = {
  transfer: {
    keys: (a: { from: number, to: number }) => ({ reads: [`acct/${a.from}`, `acct/${a.to}`], writes: [`acct/${a.from}`, `acct/${a.to}`] }),
    run (tx: Tx, a: { from: number, to: number }) {
      const from = (tx.get(`acct/${a.from}`) as number | undefined) ?? 1000
      const to = (tx.get(`acct/${a.to}`) as number | undefined) ?? 1000
      if (from < 1) return tx.abort('insufficient funds')
      tx.put(`acct/${a.from}`, from - 1)
      tx.put(`acct/${a.to}`, to + 1)
      return null
    }
  }
}

/**
 * The protocol alone: voters in one process, messages handed over with zero
 * delay (batched per event-loop turn), MemoryStore, closed-loop clients
 * doing 2-key transfers through random voters.
 */
export async function benchCore (o: CoreBenchOptions): Promise<CoreBenchResult> {
  const registry = createRegistry(procedures)
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
