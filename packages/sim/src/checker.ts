/**
 * History checker: decides whether a run's client observations and final
 * replica states are consistent with strict serializability.
 *
 * List-append transactions are checked the way Elle does it: every list read
 * reveals a prefix of its key's version order, so dependencies between
 * transactions (ww, wr, rw) follow from values alone, and a cycle in the
 * dependency graph (plus real-time edges) proves the run was not strictly
 * serializable. Bank workloads and replica convergence get direct invariant
 * checks. The checker is pure and trusts nothing the protocol reports.
 */
import type { History, ListOp, ReplicaFinal, Violation, ViolationKind } from './history.js'

const WW = 1
const WR = 2
const RW = 4
const RT = 8

/** Beyond this many tries a G-single search gives up and the cycle is reported as G2. */
const MAX_SINGLE_RW_TRIES = 256
/** Lists in messages stop after this many items so one bad run stays readable. */
const MAX_LISTED = 8

interface Observation {
  readonly key: string
  readonly list: readonly number[]
  /** The reading transaction, or undefined for a replica's final list. */
  readonly op: ListOp | undefined
  /** Read before the transaction appended to this key, so it shows only others' writes. */
  readonly external: boolean
  readonly source: string
}

interface VersionOrder {
  readonly order: readonly number[]
  readonly pos: ReadonlyMap<number, number>
}

type Appends = Map<string, Map<number, ListOp>>

export function checkHistory (history: History): Violation[] {
  const out: Violation[] = []
  const listOps = history.ops.filter((op): op is ListOp => op.kind === 'list')
  const appends = indexAppends(listOps, out)
  const observations = collectObservations(listOps, history.finals)
  checkInternal(listOps, out)
  checkObservedValues(observations, appends, out)
  const { orders, incompatible } = inferVersionOrders(observations, out)
  checkLost(listOps, observations, appends, history.finals, out)
  checkCycles(listOps, observations, incompatible, appends, orders, out)
  checkBank(history, out)
  checkDivergence(history.finals, out)
  return out
}

export function formatViolation (v: Violation): string {
  const ops = v.ops !== undefined && v.ops.length > 0 ? ` [ops ${v.ops.join(', ')}]` : ''
  return `${v.kind}: ${v.message}${ops}`
}

function indexAppends (listOps: readonly ListOp[], out: Violation[]): Appends {
  const appends: Appends = new Map()
  for (const op of listOps) {
    for (const mop of op.mops) {
      if (mop.f !== 'append') continue
      let byValue = appends.get(mop.key)
      if (byValue === undefined) appends.set(mop.key, (byValue = new Map()))
      const prev = byValue.get(mop.value)
      // Dependencies are inferred from values, which only works if each value names one write.
      if (prev !== undefined) {
        out.push({
          kind: 'duplicate',
          message: `value ${mop.value} of key ${JSON.stringify(mop.key)} is appended by both T${prev.id} and T${op.id}; appended values must be unique per key`,
          ops: prev === op ? [op.id] : [prev.id, op.id],
        })
      } else {
        byValue.set(mop.value, op)
      }
    }
  }
  return appends
}

function collectObservations (listOps: readonly ListOp[], finals: readonly ReplicaFinal[]): Observation[] {
  const obs: Observation[] = []
  for (const op of listOps) {
    // An info op's reads never reached the client, so they observed nothing.
    if (op.outcome === 'info') continue
    const written = new Set<string>()
    for (const mop of op.mops) {
      if (mop.f === 'append') {
        written.add(mop.key)
        continue
      }
      if (mop.value === null) continue
      const external = !written.has(mop.key)
      // A failed transaction's reads of its own appends show writes that never happened.
      if (op.outcome === 'fail' && !external) continue
      obs.push({ key: mop.key, list: mop.value, op, external, source: `T${op.id}` })
    }
  }
  for (const final of finals) {
    for (const [key, list] of Object.entries(final.lists)) {
      obs.push({ key, list, op: undefined, external: true, source: `final of ${final.peer}` })
    }
  }
  return obs
}

function checkInternal (listOps: readonly ListOp[], out: Violation[]): void {
  for (const op of listOps) {
    if (op.outcome === 'info') continue
    // Per key: the list as last read (if any) and this transaction's appends since.
    const state = new Map<string, { known: readonly number[] | null; appended: number[] }>()
    for (const mop of op.mops) {
      const s = state.get(mop.key)
      if (mop.f === 'append') {
        if (s === undefined) state.set(mop.key, { known: null, appended: [mop.value] })
        else s.appended.push(mop.value)
        continue
      }
      if (mop.value === null) continue
      if (s !== undefined) {
        const expected = s.known === null ? null : [...s.known, ...s.appended]
        const ok = expected === null ? endsWith(mop.value, s.appended) : sameList(mop.value, expected)
        if (!ok) {
          const wanted = expected === null ? `to end with ${show(s.appended)}` : show(expected)
          out.push({
            kind: 'internal',
            message: `T${op.id} read ${JSON.stringify(mop.key)} as ${show(mop.value)}, but its own earlier reads and appends require ${wanted}`,
            ops: [op.id],
          })
        }
      }
      state.set(mop.key, { known: mop.value, appended: [] })
    }
  }
}

function checkObservedValues (observations: readonly Observation[], appends: Appends, out: Violation[]): void {
  type Group = { key: string; value: number; sources: string[]; ops: Set<number> }
  const groups: Record<'duplicate' | 'phantom-value' | 'aborted-read', Map<string, Group>> = {
    duplicate: new Map(),
    'phantom-value': new Map(),
    'aborted-read': new Map(),
  }
  const note = (kind: keyof typeof groups, o: Observation, value: number, writer?: ListOp): void => {
    const id = `${o.key}\u0000${value}`
    let g = groups[kind].get(id)
    if (g === undefined) groups[kind].set(id, (g = { key: o.key, value, sources: [], ops: new Set() }))
    if (!g.sources.includes(o.source)) g.sources.push(o.source)
    if (o.op !== undefined) g.ops.add(o.op.id)
    if (writer !== undefined) g.ops.add(writer.id)
  }
  for (const o of observations) {
    const seen = new Set<number>()
    const byValue = appends.get(o.key)
    for (const value of o.list) {
      if (seen.has(value)) note('duplicate', o, value)
      seen.add(value)
      const writer = byValue?.get(value)
      if (writer === undefined) note('phantom-value', o, value)
      else if (writer.outcome === 'fail' && writer !== o.op) note('aborted-read', o, value, writer)
    }
  }
  for (const g of groups.duplicate.values()) {
    push(out, 'duplicate', `value ${g.value} of key ${JSON.stringify(g.key)} appears more than once in ${listSome(g.sources)}`, g.ops)
  }
  for (const g of groups['phantom-value'].values()) {
    push(out, 'phantom-value', `value ${g.value} of key ${JSON.stringify(g.key)} was never appended, yet ${listSome(g.sources)} saw it`, g.ops)
  }
  for (const g of groups['aborted-read'].values()) {
    const writer = appends.get(g.key)?.get(g.value)
    push(
      out,
      'aborted-read',
      `value ${g.value} of key ${JSON.stringify(g.key)} was appended by failed T${writer?.id ?? '?'}, yet ${listSome(g.sources)} saw it`,
      g.ops,
    )
  }
}

function inferVersionOrders (
  observations: readonly Observation[],
  out: Violation[],
): { orders: Map<string, VersionOrder>; incompatible: Set<Observation> } {
  const byKey = new Map<string, Observation[]>()
  for (const o of observations) {
    const list = byKey.get(o.key)
    if (list === undefined) byKey.set(o.key, [o])
    else list.push(o)
  }
  const orders = new Map<string, VersionOrder>()
  const incompatible = new Set<Observation>()
  for (const [key, obs] of byKey) {
    // The longest list is the best guess of the version order; on ties a replica's final wins.
    let ref = obs[0]
    for (const o of obs) {
      if (ref === undefined || o.list.length > ref.list.length || (o.list.length === ref.list.length && o.op === undefined && ref.op !== undefined)) {
        ref = o
      }
    }
    if (ref === undefined) continue
    const bad = obs.filter((o) => !isPrefix(o.list, ref.list))
    if (bad.length > 0) {
      for (const o of bad) incompatible.add(o)
      const first = bad[0]!
      const ids = new Set<number>()
      if (ref.op !== undefined) ids.add(ref.op.id)
      for (const o of bad) if (o.op !== undefined) ids.add(o.op.id)
      const more = bad.length > 1 ? ` (${bad.length - 1} more incompatible: ${listSome(bad.slice(1).map((o) => o.source))})` : ''
      push(
        out,
        'incompatible-order',
        `key ${JSON.stringify(key)}: ${first.source} saw ${show(first.list)}, not a prefix of ${ref.source}'s ${show(ref.list)}${more}`,
        ids,
      )
    }
    const order: number[] = []
    const pos = new Map<number, number>()
    for (const value of ref.list) {
      if (pos.has(value)) continue
      pos.set(value, order.length)
      order.push(value)
    }
    orders.set(key, { order, pos })
  }
  return { orders, incompatible }
}

function checkLost (
  listOps: readonly ListOp[],
  observations: readonly Observation[],
  appends: Appends,
  finals: readonly ReplicaFinal[],
  out: Violation[],
): void {
  if (finals.length === 0) return
  // Acknowledged appends and anything a committed read saw must survive to the quiet end state.
  const required = new Map<string, Map<number, { why: string; ops: number[] }>>()
  const require = (key: string, value: number, why: string, ops: number[]): void => {
    let byValue = required.get(key)
    if (byValue === undefined) required.set(key, (byValue = new Map()))
    if (!byValue.has(value)) byValue.set(value, { why, ops })
  }
  for (const op of listOps) {
    if (op.outcome !== 'ok') continue
    for (const mop of op.mops) if (mop.f === 'append') require(mop.key, mop.value, `appended by acknowledged T${op.id}`, [op.id])
  }
  for (const o of observations) {
    if (o.op?.outcome !== 'ok') continue
    for (const value of o.list) {
      const writer = appends.get(o.key)?.get(value)
      // Phantom and aborted values are reported as such, not again as lost.
      if (writer === undefined || writer.outcome === 'fail') continue
      require(o.key, value, `appended by T${writer.id} and seen by T${o.op.id}`, [writer.id, o.op.id])
    }
  }
  const finalSets = finals.map((f) => new Map(Object.entries(f.lists).map(([k, l]) => [k, new Set(l)])))
  for (const [key, byValue] of required) {
    for (const [value, { why, ops }] of byValue) {
      const missing = finals.filter((f, i) => holdsList(f, key) && finalSets[i]?.get(key)?.has(value) !== true).map((f) => f.peer)
      if (missing.length === 0) continue
      push(out, 'lost', `value ${value} of key ${JSON.stringify(key)}, ${why}, is missing from the final list of ${listSome(missing)}`, ops)
    }
  }
}

function checkCycles (
  listOps: readonly ListOp[],
  observations: readonly Observation[],
  incompatible: ReadonlySet<Observation>,
  appends: Appends,
  orders: ReadonlyMap<string, VersionOrder>,
  out: Violation[],
): void {
  const appearsInOrder = (op: ListOp): boolean =>
    op.mops.some((m) => m.f === 'append' && orders.get(m.key)?.pos.has(m.value) === true)
  const nodeOps = listOps.filter((op) => op.outcome === 'ok' || (op.outcome === 'info' && appearsInOrder(op)))
  const nodeOf = new Map<ListOp, number>(nodeOps.map((op, i) => [op, i]))
  const writerNode = (key: string, value: number | undefined): number | undefined => {
    if (value === undefined) return undefined
    const w = appends.get(key)?.get(value)
    return w === undefined ? undefined : nodeOf.get(w)
  }

  // Real-time order goes through one barrier node per distinct completion time, chained in
  // time order, so it costs O(n) edges instead of O(n^2) while keeping reachability exact.
  const rtDone = nodeOps.filter((op) => op.realTime && op.outcome === 'ok' && op.completeTime !== undefined)
  const times = [...new Set(rtDone.map((op) => op.completeTime!))].sort((a, b) => a - b)
  const n = nodeOps.length
  const adj: Array<Map<number, number>> = Array.from({ length: n + times.length }, () => new Map())
  const addEdge = (from: number | undefined, to: number | undefined, type: number): void => {
    if (from === undefined || to === undefined || from === to) return
    const m = adj[from]!
    m.set(to, (m.get(to) ?? 0) | type)
  }

  for (const [key, { order }] of orders) {
    for (let i = 1; i < order.length; i++) addEdge(writerNode(key, order[i - 1]), writerNode(key, order[i]), WW)
  }
  for (const o of observations) {
    if (o.op === undefined || !o.external || incompatible.has(o)) continue
    const reader = nodeOf.get(o.op)
    const vo = orders.get(o.key)
    if (reader === undefined || vo === undefined) continue
    const last = o.list[o.list.length - 1]
    if (last !== undefined) addEdge(writerNode(o.key, last), reader, WR)
    const next = last === undefined ? 0 : (vo.pos.get(last) ?? Infinity) + 1
    addEdge(reader, writerNode(o.key, vo.order[next]), RW)
  }
  const timeIndex = new Map(times.map((t, i) => [t, n + i]))
  for (let i = 1; i < times.length; i++) addEdge(n + i - 1, n + i, RT)
  for (const op of rtDone) addEdge(nodeOf.get(op), timeIndex.get(op.completeTime!), RT)
  for (const op of nodeOps) {
    if (!op.realTime) continue
    const before = lastBelow(times, op.invokeTime)
    if (before >= 0) addEdge(n + before, nodeOf.get(op), RT)
  }

  const graph: Graph = { adj, n, ops: nodeOps }
  const all = Array.from({ length: adj.length }, (_, i) => i)
  for (const scc of tarjan(all, (u) => adj[u]!.keys())) {
    if (scc.length < 2) continue
    out.push(explainScc(graph, scc))
  }
}

interface Graph {
  readonly adj: ReadonlyArray<ReadonlyMap<number, number>>
  /** Nodes below `n` are transactions; the rest are real-time barriers. */
  readonly n: number
  readonly ops: readonly ListOp[]
}

/** Names the least severe cycle the component contains, so reports point at the mildest cause. */
function explainScc (g: Graph, scc: readonly number[]): Violation {
  const inScc = new Set(scc)
  const isBarrier = (u: number): boolean => u >= g.n
  const succ = (types: number) =>
    function* (u: number): Iterable<number> {
      for (const [v, m] of g.adj[u]!) if ((m & types) !== 0 && inScc.has(v)) yield v
    }
  const anyCycle = (types: number): number[] | null => {
    for (const comp of tarjan(scc, succ(types))) {
      const start = comp.find((u) => u < g.n)
      if (comp.length > 1 && start !== undefined) return bfsPath(start, start, succ(types), new Set(comp), isBarrier)
    }
    return null
  }
  const singleRw = (types: number): number[] | null => {
    let tries = 0
    for (const u of scc) {
      for (const [v, m] of g.adj[u]!) {
        if ((m & RW) === 0 || !inScc.has(v)) continue
        if (++tries > MAX_SINGLE_RW_TRIES) return null
        const back = bfsPath(v, u, succ(types), inScc, isBarrier)
        if (back !== null) return [u, ...back]
      }
    }
    return null
  }
  let cycle: number[] | null = null
  let allowed = 0
  let rwFirst = false
  for (const rt of [0, RT]) {
    for (const mask of [WW | rt, WW | WR | rt]) {
      cycle = anyCycle(mask)
      allowed = mask
      if (cycle !== null) break
    }
    if (cycle === null) {
      allowed = WW | WR | rt
      cycle = singleRw(allowed)
      rwFirst = cycle !== null
    }
    if (cycle === null) {
      allowed = WW | WR | RW | rt
      cycle = anyCycle(allowed)
    }
    if (cycle !== null) break
  }
  // A strongly connected component always holds a cycle; this only guards the types.
  const path = cycle ?? [...scc, scc[0]!]

  const labels: string[] = []
  for (let i = 1; i < path.length; i++) {
    const mask = g.adj[path[i - 1]!]!.get(path[i]!) ?? 0
    labels.push(i === 1 && rwFirst ? 'rw' : label(mask & allowed))
  }
  const parts: string[] = []
  const ids: number[] = []
  path.forEach((node, i) => {
    if (node >= g.n) return
    const id = g.ops[node]!.id
    // Edges through barriers are all real-time; show the run as one rt edge between transactions.
    parts.push(i === 0 ? `T${id}` : `-${path[i - 1]! >= g.n ? 'rt' : labels[i - 1]!}-> T${id}`)
    if (i < path.length - 1) ids.push(id)
  })
  const text = parts.join(' ')
  const rwCount = labels.filter((l) => l === 'rw').length
  const usesRt = labels.includes('rt')
  const anomaly = rwCount === 0 ? (labels.includes('wr') ? 'G1c' : 'G0') : rwCount === 1 ? 'G-single' : 'G2'
  const members = scc.filter((u) => u < g.n).map((u) => g.ops[u]!.id)
  return {
    kind: 'cycle',
    message: `${anomaly}${usesRt ? '+realtime' : ''} cycle: ${text} (in a component of ${members.length} transactions: ${listSome(members.map((id) => `T${id}`))})`,
    ops: ids,
  }
}

function label (mask: number): string {
  if ((mask & WW) !== 0) return 'ww'
  if ((mask & WR) !== 0) return 'wr'
  if ((mask & RW) !== 0) return 'rw'
  return 'rt'
}

/**
 * Path from `from` to `to` (a cycle when they are equal) through the fewest transactions,
 * as the list of nodes visited. Barrier hops cost nothing (a 0-1 BFS), or a long barrier
 * chain would make a data-dependency detour look shorter than one real-time edge.
 */
function bfsPath (
  from: number,
  to: number,
  succ: (u: number) => Iterable<number>,
  within: ReadonlySet<number>,
  isBarrier: (u: number) => boolean,
): number[] | null {
  const parent = new Map<number, number>()
  const cost = new Map<number, number>([[from, 0]])
  let level: number[] = [from]
  for (let d = 0; level.length > 0; d++) {
    const next: number[] = []
    for (let i = 0; i < level.length; i++) {
      const u = level[i]!
      if (cost.get(u) !== d) continue
      for (const v of succ(u)) {
        if (!within.has(v)) continue
        if (v === to) {
          const path = [to]
          for (let w = u; ; w = parent.get(w)!) {
            path.push(w)
            if (w === from) break
          }
          return path.reverse()
        }
        const c = isBarrier(v) ? d : d + 1
        const old = cost.get(v)
        if (old !== undefined && old <= c) continue
        cost.set(v, c)
        parent.set(v, u)
        if (c === d) level.push(v)
        else next.push(v)
      }
    }
    level = next
  }
  return null
}

/** Tarjan's strongly connected components with an explicit stack, safe for deep graphs. */
function tarjan (nodes: Iterable<number>, succ: (u: number) => Iterable<number>): number[][] {
  const index = new Map<number, number>()
  const low = new Map<number, number>()
  const onStack = new Set<number>()
  const stack: number[] = []
  const comps: number[][] = []
  let counter = 0
  for (const root of nodes) {
    if (index.has(root)) continue
    const work: Array<{ u: number; it: Iterator<number> }> = []
    const visit = (u: number): void => {
      index.set(u, counter)
      low.set(u, counter)
      counter++
      stack.push(u)
      onStack.add(u)
      work.push({ u, it: succ(u)[Symbol.iterator]() })
    }
    visit(root)
    while (work.length > 0) {
      const frame = work[work.length - 1]!
      const step = frame.it.next()
      if (!step.done) {
        const v = step.value
        if (!index.has(v)) visit(v)
        else if (onStack.has(v)) low.set(frame.u, Math.min(low.get(frame.u)!, index.get(v)!))
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent !== undefined) low.set(parent.u, Math.min(low.get(parent.u)!, low.get(frame.u)!))
      if (low.get(frame.u) === index.get(frame.u)) {
        const comp: number[] = []
        let w: number
        do {
          w = stack.pop()!
          onStack.delete(w)
          comp.push(w)
        } while (w !== frame.u)
        comps.push(comp)
      }
    }
  }
  return comps
}

function checkBank (history: History, out: Violation[]): void {
  const total = history.bankTotal
  const check = (balances: Readonly<Record<string, number>>, who: string, ops: number[]): void => {
    const entries = Object.entries(balances)
    const sum = entries.reduce((acc, [, b]) => acc + b, 0)
    if (total !== undefined && sum !== total) {
      push(out, 'bank-total', `${who} has balances summing to ${sum}, expected ${total}`, ops)
    }
    const negative = entries.filter(([, b]) => b < 0)
    if (negative.length > 0) {
      push(out, 'bank-negative', `${who} has negative balances: ${negative.map(([a, b]) => `${a}=${b}`).join(', ')}`, ops)
    }
  }
  for (const op of history.ops) {
    if (op.kind === 'bank-read' && op.outcome === 'ok' && op.balances !== undefined) check(op.balances, `bank read T${op.id}`, [op.id])
  }
  // Finals of a run without a bank workload hold no accounts; only check them when there is one.
  if (total === undefined && history.accounts === undefined) return
  const whole = history.finals.filter((f) => f.holds === undefined)
  for (const final of whole) check(final.balances, `final of ${final.peer}`, [])
  // Replicas of some partitions each hold some accounts: together (they agree where they overlap, checkDivergence) they hold the bank.
  const parts = history.finals.filter((f) => f.holds !== undefined)
  const merged: Record<string, number> = {}
  for (const f of parts) for (const a of f.holds?.accounts ?? []) merged[a] ??= f.balances[a] as number
  if (parts.length > 0 && (history.accounts ?? []).every((a) => a in merged)) check(merged, `finals of ${listSome(parts.map((f) => f.peer))} together`, [])
}

/** Whether a replica holds a list key (one of some partitions holds only its own). */
function holdsList (f: ReplicaFinal, key: string): boolean {
  return f.holds === undefined || f.holds.lists.includes(key)
}

function checkDivergence (finals: readonly ReplicaFinal[], out: Violation[]): void {
  if (finals.length < 2) return
  // Replicas of some partitions compare digests only with replicas holding the same partitions, and values only where they hold them.
  const tag = (f: ReplicaFinal): string => f.holds?.tag ?? '*'
  type Field = [string, (f: ReplicaFinal) => string, (f: ReplicaFinal) => boolean]
  const fields: Field[] = []
  // (A replica holding no partition has no state of its own: nothing to compare.)
  for (const t of new Set(finals.map(tag))) {
    if (t === '') continue
    const same = (f: ReplicaFinal): boolean => tag(f) === t
    const label = t === '*' ? '' : ` (partitions ${t})`
    fields.push([`stateDigest${label}`, (f) => f.stateDigest, same])
    // A partitioned replica's result digest and last thunk follow its own history (what it forwarded, where
    // its snapshots came from): only whole replicas compare them. Its values are compared key by key below.
    if (t === '*') fields.push([`resultDigest${label}`, (f) => f.resultDigest, same], [`evaluatedThrough${label}`, (f) => f.evaluatedThrough, same])
  }
  const accounts = new Set(finals.flatMap((f) => Object.keys(f.balances)))
  for (const a of [...accounts].sort()) fields.push([`balances[${JSON.stringify(a)}]`, (f) => String(f.balances[a]), (f) => a in f.balances])
  const keys = new Set(finals.flatMap((f) => Object.keys(f.lists)))
  // A missing key means the empty list, so compare per key rather than whole objects.
  for (const key of [...keys].sort()) fields.push([`lists[${JSON.stringify(key)}]`, (f) => JSON.stringify(f.lists[key] ?? []), (f) => holdsList(f, key)])
  for (const [name, get, applies] of fields) {
    const groups = new Map<string, string[]>()
    for (const f of finals) {
      if (!applies(f)) continue
      const v = get(f)
      const peers = groups.get(v)
      if (peers === undefined) groups.set(v, [f.peer])
      else peers.push(f.peer)
    }
    if (groups.size < 2) continue
    const parts = [...groups].map(([v, peers]) => `${listSome(peers)} have ${v.length > 60 ? `${v.slice(0, 57)}...` : v}`)
    out.push({ kind: 'divergence', message: `replicas diverge on ${name}: ${parts.join('; ')}` })
  }
}

function push (out: Violation[], kind: ViolationKind, message: string, ops: Iterable<number>): void {
  const ids = [...new Set(ops)].sort((a, b) => a - b)
  out.push(ids.length > 0 ? { kind, message, ops: ids } : { kind, message })
}

/** Index of the last element strictly below `t` in an ascending array, or -1. */
function lastBelow (sorted: readonly number[], t: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < t) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}

function isPrefix (a: readonly number[], b: readonly number[]): boolean {
  return a.length <= b.length && a.every((v, i) => b[i] === v)
}

function sameList (a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && isPrefix(a, b)
}

function endsWith (list: readonly number[], suffix: readonly number[]): boolean {
  const offset = list.length - suffix.length
  return offset >= 0 && suffix.every((v, i) => list[offset + i] === v)
}

function show (list: readonly number[]): string {
  return `[${list.join(', ')}]`
}

function listSome (items: readonly (string | number)[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ')
  return items.length > MAX_LISTED ? `${shown} and ${items.length - MAX_LISTED} more` : shown
}
