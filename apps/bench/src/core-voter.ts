import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { MemoryStore, Peer, createRegistry, type Message } from '@tideline/core'
import { transferProcedures } from './transfer-procedures.js'

/** One voter of the threaded core benchmark, with its share of the closed-loop clients. */
interface Init { id: string, voters: string[], clients: number, accounts: number }
const init = workerData as Init & { entry: string }
const port = parentPort as MessagePort
const registry = createRegistry(transferProcedures)
const hash = registry.procedures.get('transfer')?.hash ?? ''

let peer: Peer | undefined
const links = new Map<string, MessagePort>()
const outgoing = new Map<string, Message[]>()
let flushing = false
const flush = (): void => {
  flushing = false
  for (const [to, batch] of outgoing) links.get(to)?.postMessage(batch)
  outgoing.clear()
}

let measuring = false
let running = true
let committed = 0
let aborted = 0
const latencies: number[] = []

port.on('message', (msg: { type: string, ports?: Record<string, MessagePort> }) => {
  if (msg.type === 'init') void start(msg.ports ?? {})
  else if (msg.type === 'measure') { measuring = true; committed = 0; aborted = 0; latencies.length = 0 }
  else if (msg.type === 'stop') {
    measuring = false
    running = false
    port.postMessage({ type: 'stats', committed, aborted, latencies, counters: peer?.status().counters })
  }
})

async function start (ports: Record<string, MessagePort>): Promise<void> {
  peer = await Peer.open({
    id: init.id,
    config: { groupId: 'bench', epoch: 0, voters: init.voters, registryHash: registry.hash },
    registry,
    store: new MemoryStore({ delay: () => new Promise<void>(resolve => { setImmediate(resolve) }) }),
    clock: { now: () => Date.now() },
    send: (to, m) => {
      let batch = outgoing.get(to)
      if (batch === undefined) { batch = []; outgoing.set(to, batch) }
      batch.push(m)
      if (!flushing) { flushing = true; setImmediate(flush) }
    }
  })
  for (const [from, p] of Object.entries(ports)) {
    links.set(from, p)
    p.on('message', (batch: Message[]) => { for (const m of batch) peer?.receive(from, m) })
  }
  setInterval(() => { peer?.tick() }, 5).unref()
  port.postMessage({ type: 'ready' })
  let n = 0
  for (let c = 0; c < init.clients; c++) {
    void (async () => {
      while (running && peer !== undefined) {
        const from = Math.floor(Math.random() * init.accounts)
        let to = Math.floor(Math.random() * init.accounts)
        if (to === from) to = (to + 1) % init.accounts
        const t0 = performance.now()
        const r = await peer.submit({ clientTxnId: `${init.id}-${n++}`, procedure: 'transfer', hash, args: { from, to } })
        if (!measuring) continue
        latencies.push(performance.now() - t0)
        if (r.status === 'committed') committed++
        else aborted++
      }
    })()
  }
}
