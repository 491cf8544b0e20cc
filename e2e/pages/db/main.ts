import { Hasher, TS_ZERO, fromHex, makeTimestamp, peerTag, runRules, strictSignature, type Thunk, type Cursor } from '@tideline/core'
import { WorkerBackend, decodeSigned, inviteDigest, openDatabase, registryOf, webCryptoCallVerifier, type Database, type DatabaseStatus, type Revocation } from '@tideline/db'
import { ACCOUNTS, INITIAL, procedures } from './procedures.js'

// The page side of the db tests: one database per page, a subscription over
// every account that records the bank total each callback saw, and the
// network state at that moment.

interface Seen { readonly total: number, readonly ts: string, readonly network: string, readonly values: Record<string, number> }

const state: { db?: Database<typeof procedures>, seen: Seen[], errors: string[], pending?: { status: string, ms: number }, worker?: Worker } = { seen: [], errors: [] }
const keys = ACCOUNTS.map(a => `acct/${a}`)

function db (): Database<typeof procedures> {
  if (state.db === undefined) throw new Error('not open')
  return state.db
}

const harness = {
  /** Opens the database and subscribes at once (before the network is up). */
  async open (o: { peers: string[], invite?: string, creator?: string, name?: string, crashable?: boolean, partitions?: number[], watch?: string[], tree?: boolean, role?: 'voter', found?: string, handOverGraceMs?: number }): Promise<{ id: string, slot: number | undefined, network: string }> {
    const openedAt = performance.now()
    const opened = await openDatabase({
      name: o.name ?? 'bank',
      procedures,
      peers: o.peers,
      ...(o.invite === undefined ? {} : { invite: o.invite }),
      ...(o.creator === undefined ? {} : { creator: o.creator }),
      ...(o.role === undefined ? {} : { role: o.role }),
      ...(o.found === undefined ? {} : { found: { groupId: o.found } }),
      ...(o.handOverGraceMs === undefined ? {} : { handOverGraceMs: o.handOverGraceMs }),
      worker: () => {
        const w = o.crashable === true
          ? new Worker(new URL('./crashable-worker.ts', import.meta.url), { type: 'module' })
          : new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' })
        state.worker = w
        return w
      },
      timeoutMs: 30_000,
      ...(o.partitions === undefined ? {} : { partitions: o.partitions }),
      ...(o.tree === true ? { tree: true } : {}),
      // Snapshot catch-up is what a late tab spends its first seconds on: visible in the console (benchmarks read it).
      logger: (event, detail) => { if (event.startsWith('snapshot') || event.startsWith('rc-') || event.startsWith('hand-over') || event === 'ask-to-vote' || event === 'recovered' || event === 'epoch-evaluated') console.info(`tideline ${(performance.now() - openedAt).toFixed(0)} ms ${event} (${new Date().toISOString().slice(11, 23)}) ${JSON.stringify(detail)}`) }
    })
    state.db = opened
    const network = opened.status().network
    // `watch`: the accounts a tab of some partitions subscribes to (those it follows).
    const watched = o.watch === undefined ? keys : o.watch.map(a => `acct/${a}`)
    opened.subscribe(watched, (values, ts) => {
      const v: Record<string, number> = {}
      for (const k of watched) v[k] = (values[k] as number | undefined) ?? INITIAL
      state.seen.push({ total: Object.values(v).reduce((a, b) => a + b, 0), ts, network: opened.status().network, values: v })
    }, { onError: e => { state.errors.push(`${e.name}: ${e.message}`) } })
    return { id: opened.id, slot: opened.status().slot, network }
  },
  async online (): Promise<void> {
    await db().online
  },
  /** Waits for `synced`; returns its timestamp and how many callbacks came before it. */
  async synced (timeoutMs?: number): Promise<{ ts: string, before: number }> {
    const ts = await db().synced(timeoutMs === undefined ? {} : { timeoutMs })
    return { ts, before: state.seen.length }
  },
  /** `n` transfers between random accounts (of `among`, default all), `parallel` at a time; returns the statuses. */
  async transfers (n: number, parallel: number, among: readonly string[] = ACCOUNTS): Promise<{ committed: number, aborted: number, failed: string[] }> {
    let committed = 0
    let aborted = 0
    const failed: string[] = []
    let next = 0
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++
        const from = among[Math.floor(Math.random() * among.length)] as string
        let to = among[Math.floor(Math.random() * among.length)] as string
        if (to === from) to = among[(among.indexOf(from) + 1) % among.length] as string
        try {
          const r = await db().call('transfer', { from, to, amount: 1 + (i % 9) })
          if (r.status === 'committed') committed++
          else aborted++
        } catch (err) {
          failed.push(`${(err as Error).name}: ${(err as Error).message}`)
        }
      }
    }))
    return { committed, aborted, failed }
  },
  /** Starts one call and reports when it settles (for calls made offline). */
  startCall (): void {
    const started = Date.now()
    void db().call('transfer', { from: 'a0', to: 'a1', amount: 1 }).then(
      r => { state.pending = { status: r.status, ms: Date.now() - started } },
      (err: unknown) => { state.pending = { status: `${(err as Error).name}`, ms: Date.now() - started } })
  },
  pending (): { status: string, ms: number } | undefined {
    return state.pending
  },
  /** Revokes a member by peer id and/or an invite (text form) from this tab; the epoch that holds them, or the error's name. */
  async revoke (o: { peer?: string, invite?: string }): Promise<{ epoch?: number, error?: string }> {
    const targets: Revocation[] = []
    if (o.peer !== undefined) targets.push({ kind: 'peer', id: o.peer })
    if (o.invite !== undefined) targets.push({ kind: 'invite', id: await inviteDigest(decodeSigned(o.invite)) })
    try {
      return { epoch: await db().revoke(targets) }
    } catch (err) {
      return { error: (err as Error).name }
    }
  },
  /** One transfer; its status, or the error's name and message. */
  async transferOnce (): Promise<string> {
    try {
      return (await db().call('transfer', { from: 'a0', to: 'a1', amount: 1 })).status
    } catch (err) {
      return `${(err as Error).name}: ${(err as Error).message}`
    }
  },
  /** Makes a crashable worker throw on its event loop; then one call, reporting how it failed. */
  async crashWorker (): Promise<{ name: string, failed: string | undefined }> {
    state.worker?.postMessage('tideline-test-crash')
    await new Promise(resolve => setTimeout(resolve, 200))
    try {
      await db().call('transfer', { from: 'a0', to: 'a1', amount: 1 })
      return { name: 'none', failed: db().status().failed }
    } catch (err) {
      return { name: (err as Error).name, failed: db().status().failed }
    }
  },
  status (): DatabaseStatus {
    return db().status()
  },
  /** An invite signed by this tab (a group's founder), text form. */
  async invite (role: 'voter' | 'writer'): Promise<string> {
    return await db().invite({ role })
  },
  /**
   * The page as a hidden (or shown) tab sees it: `document.visibilityState` and a `visibilitychange` event.
   * Headless Chromium shows every page as visible whatever is done to its window (Playwright #2286), so
   * this is the page's view only: the browser does not throttle it.
   */
  setVisibility (state: 'hidden' | 'visible'): void {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' })
    document.dispatchEvent(new Event('visibilitychange'))
  },
  seen (): Seen[] {
    return state.seen
  },
  /** Subscribes to one account's key; the error's name if refused at once. */
  trySubscribe (account: string): string | undefined {
    try {
      db().subscribe([`acct/${account}`], () => {})()
      return undefined
    } catch (err) {
      return (err as Error).name
    }
  },
  errors (): string[] {
    return state.errors
  },
  async read (consistency: 'strict' | 'snapshot'): Promise<Record<string, number>> {
    const r = await db().read(keys, { consistency })
    const v: Record<string, number> = {}
    for (const k of keys) v[k] = (r.values[k] as number | undefined) ?? INITIAL
    return v
  },
  /** Closed-loop calls from this tab for `seconds`, `parallel` at a time; each call's latency in ms. */
  async latency (seconds: number, parallel: number): Promise<{ ms: number[], elapsedMs: number, failed: number }> {
    const ms: number[] = []
    let failed = 0
    const start = performance.now()
    const end = start + seconds * 1000
    await Promise.all(Array.from({ length: parallel }, async (_, c) => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now()
        try {
          await db().call('transfer', { from: ACCOUNTS[(c + i) % ACCOUNTS.length] as string, to: ACCOUNTS[(c + i + 3) % ACCOUNTS.length] as string, amount: 1 })
          ms.push(performance.now() - t0)
        } catch {
          failed++
        }
      }
    }))
    return { ms, elapsedMs: performance.now() - start, failed }
  },
  /**
   * The worker's evaluation throughput on its own: a fresh worker and
   * IndexedDB database, `total` transfer thunks over 1,000 accounts applied in
   * runs of `runSize` through Comlink, as the page's Peer does.
   */
  async evalBench (total: number, runSize: number): Promise<{ txnPerSec: number, ms: number }> {
    const name = `tideline-eval-bench-${Math.random().toString(36).slice(2)}`
    const backend = new WorkerBackend(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }))
    const registry = registryOf(procedures)
    const hash = registry.procedures.get('transfer')?.hash ?? ''
    await backend.open(name, registry.hash)
    const tag = peerTag('bench')
    const t0 = Date.now()
    let base: Cursor = { frontier: TS_ZERO, last: TS_ZERO, count: 0, digest: new Hasher().state, evalNext: {} }
    const start = performance.now()
    for (let done = 0; done < total;) {
      const run: Thunk[] = []
      for (let i = 0; i < runSize && done < total; i++, done++) {
        const from = `acct/b${(done * 7919) % 1000}`
        const to = `acct/b${(done * 104729 + 1) % 1000}`
        run.push({ ts: makeTimestamp(t0, tag, done + 1), epoch: 0, coordinator: 'bench', seq: done + 1, index: 0, procedure: 'transfer', hash, args: { from: from.slice(5), to: to.slice(5), amount: 1 }, reads: [from, to], writes: [from, to], clientTxnId: `${name}-${done}`, firstAt: t0 })
      }
      base = (await backend.applier(run, base, runRules({ groupId: name, epoch: 0, voters: [], registryHash: hash }))).cursor
    }
    const ms = performance.now() - start
    await backend.close()
    await new Promise<void>(resolve => { const r = indexedDB.deleteDatabase(name); r.onsuccess = () => { resolve() }; r.onerror = () => { resolve() } })
    return { txnPerSec: total / (ms / 1000), ms }
  },
  async close (): Promise<void> {
    await state.db?.close()
    delete state.db
  },
  /** A tab replica's verdict on each signed call (what its worker's applier decides): the strict check, then WebCrypto. */
  async callVerdicts (cases: ReadonlyArray<{ id: string, message: string, signature: string }>): Promise<boolean[]> {
    const verify = webCryptoCallVerifier()
    const out: boolean[] = []
    for (const c of cases) {
      const sig = fromHex(c.signature)
      out.push(strictSignature(sig) && await verify(c.id, fromHex(c.message), sig))
    }
    return out
  }
}

declare global {
  interface Window { dbHarness: typeof harness }
}
window.dbHarness = harness
