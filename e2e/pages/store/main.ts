import { IdbStore } from '@tideline/store-idb'
import { TS_INFINITY, type Value } from '@tideline/core'
import { batchOf, tsAt } from '@tideline/core/store-compliance-cases'
import { runCase, type CaseResult } from './cases.js'

let worker: Worker | undefined
let nextId = 0
const waiting = new Map<number, (r: CaseResult) => void>()

function inWorker (name: string): Promise<CaseResult> {
  if (worker === undefined) {
    worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
    worker.addEventListener('message', (event: MessageEvent<{ id: number, result: CaseResult }>) => {
      waiting.get(event.data.id)?.(event.data.result)
      waiting.delete(event.data.id)
    })
  }
  const id = nextId++
  const w = worker
  return new Promise(resolve => {
    waiting.set(id, resolve)
    w.postMessage({ id, name })
  })
}

/** Writes a known state (a strict batch, then a relaxed one) for the persistence tests. */
async function seed (name: string): Promise<void> {
  const store = await IdbStore.open({ name })
  await store.write({ batches: [batchOf(1, [1, 2, 3])], txns: [['c1', `${tsAt(1)}ok`]], durability: 'strict' })
  await store.write({ settle: [{ ts: tsAt(1), outcome: { status: 'committed', value: 1 }, writes: [['k', { n: 1, b: new Uint8Array([7]) }]] }], meta: [['cursor', 1]], durability: 'relaxed' })
  await store.write({ settle: [{ ts: tsAt(2), outcome: { status: 'committed', value: 2 }, writes: [['k', { n: 2, b: new Uint8Array([8]) }], ['j', 'x']] }], meta: [['cursor', 2]], durability: 'strict' })
  await store.close()
}

async function unsettled (store: IdbStore): Promise<string[]> {
  const out: string[] = []
  for (const b of (await store.batchRange('v0', 0, 1, Infinity)).batches) for (const t of b.thunks) if (await store.outcome(t.ts) === undefined) out.push(t.ts)
  return out
}

/** What a read below k's newest version gives after a reopen: the version replaced before it is not kept on disk. */
async function readBelowNewest (store: IdbStore): Promise<string> {
  try {
    return `answered ${JSON.stringify((await store.latest('k', tsAt(2)))?.ts)}`
  } catch (err) {
    return (err as Error).name
  }
}

/** Reads back what `seed` wrote, as plain JSON for the test to compare. */
async function inspect (name: string): Promise<{ k: Value | undefined, kBefore2: string, outcome1: Value | undefined, entries: number, unsettled: string[], cursor: Value | undefined, record: string | undefined }> {
  const store = await IdbStore.open({ name })
  try {
    const k = (await store.latest('k', TS_INFINITY))?.value as { n: number, b: Uint8Array } | undefined
    return {
      k: k === undefined ? undefined : { n: k.n, b: Array.from(k.b) },
      kBefore2: await readBelowNewest(store),
      outcome1: await store.outcome(tsAt(1)),
      entries: (await store.entries(TS_INFINITY)).length,
      // Thunks of the stored batches that have no outcome yet.
      unsettled: await unsettled(store),
      cursor: await store.getMeta('cursor'),
      record: (await store.txnRecords(['c1']))[0]
    }
  } finally {
    await store.close()
  }
}

const harness = {
  run: (name: string, where: 'page' | 'worker') => (where === 'page' ? runCase(name) : inWorker(name)),
  seed,
  inspect,
  expectedUnsettled: [tsAt(3)]
}

declare global {
  interface Window { storeHarness: typeof harness }
}
window.storeHarness = harness
