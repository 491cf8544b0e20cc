import { projectionDigests } from './batch-signing.js'
import { InvalidArgumentError } from './errors.js'
import { hash64Lanes } from './hash.js'
import { prefixEnd, type KeyRange } from './key-range.js'
import type { Batch, PartitionSpec, Thunk } from './types.js'

export type { PartitionSpec } from './types.js'

export const MAX_PARTITIONS = 256
export const DEFAULT_PARTITION_REPLICAS = 3

/** Checks a spec's shape (InvalidArgumentError, naming what is wrong). */
export function checkPartitionSpec (spec: PartitionSpec): void {
  const { count } = spec
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_PARTITIONS) throw new InvalidArgumentError(`partitions.count must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(count)}`)
  const r = spec.replicas ?? DEFAULT_PARTITION_REPLICAS
  if (!Number.isSafeInteger(r) || r < 1) throw new InvalidArgumentError(`partitions.replicas must be a positive integer, got ${String(r)}`)
  const sep = spec.separator ?? '/'
  if (typeof sep !== 'string' || sep.length === 0) throw new InvalidArgumentError('partitions.separator must be a non-empty string')
  const depth = spec.depth ?? 1
  if (!Number.isSafeInteger(depth) || depth < 1) throw new InvalidArgumentError(`partitions.depth must be a positive integer, got ${String(depth)}`)
  if (spec.partial !== undefined && typeof spec.partial !== 'boolean') throw new InvalidArgumentError('partitions.partial must be a boolean')
  for (const [scope, p] of Object.entries(spec.assign ?? {})) {
    if (!Number.isSafeInteger(p) || p < 0 || p >= count) throw new InvalidArgumentError(`partitions.assign[${JSON.stringify(scope)}] must be a partition from 0 to ${count - 1}, got ${String(p)}`)
  }
}

/** A key's scope: its first `depth` segments. */
export function scopeOf (key: string, spec: PartitionSpec): string {
  const sep = spec.separator ?? '/'
  const depth = spec.depth ?? 1
  let from = 0
  for (let d = 1; ; d++) {
    const at = key.indexOf(sep, from)
    if (at < 0) return key
    if (d === depth) return key.slice(0, at)
    from = at + sep.length
  }
}

/** The partition a key belongs to. */
export function partitionOf (key: string, spec: PartitionSpec): number {
  if (spec.count === 1) return 0
  const scope = scopeOf(key, spec)
  const pinned = spec.assign?.[scope]
  if (pinned !== undefined) return pinned
  return hash64Lanes(scope, 0x5ca1ab1e)[0] % spec.count
}

/**
 * The one partition every key of `range` belongs to, or undefined when the
 * range may hold keys of more than one scope (a range declared in a
 * partitioned group must lie in one scope: `{ prefix: 'board:a/' }` does).
 */
export function partitionOfRange (range: KeyRange, spec: PartitionSpec): number | undefined {
  if (spec.count === 1) return 0
  const sep = spec.separator ?? '/'
  const scope = scopeOf(range.start, spec)
  // An empty range, or one holding only the scope's own key, reads nothing of any other partition.
  if (range.end !== undefined && (range.end <= range.start || (scope === range.start && range.end <= scope + '\u0000'))) return partitionOf(scope, spec)
  // Every other key of the scope starts with `scope + separator`, and those keys are contiguous.
  const block = scope + sep
  if (!range.start.startsWith(block)) return undefined
  const end = prefixEnd(block)
  if (end !== undefined && (range.end === undefined || range.end > end)) return undefined
  return partitionOf(scope, spec)
}

/**
 * Where the partitions live: the voters (in their order) dealt into
 * `floor(n / replicas)` replica sets (one set of all of them when there are
 * fewer than twice `replicas`), voter `i` into set `i mod sets`, so every set
 * has at least `replicas` voters; partition `p` lives on set `p mod sets`.
 * Replicas of one set hold the same partitions, so any of them can give
 * another a snapshot of all it holds, and they can vouch for each other's
 * state (Calvin's grid of replicas and partitions).
 */
export class Placement {
  readonly replicas: ReadonlyArray<readonly string[]>
  readonly sets: ReadonlyArray<readonly string[]>
  /** Each set's partitions. */
  readonly setParts: ReadonlyArray<ReadonlySet<number>>
  private readonly held = new Map<string, Set<number>>()
  constructor (readonly spec: PartitionSpec, readonly voters: readonly string[]) {
    const k = Math.max(1, Math.floor(voters.length / (spec.replicas ?? DEFAULT_PARTITION_REPLICAS)))
    this.sets = Array.from({ length: k }, (_, j) => voters.filter((_, i) => i % k === j))
    this.replicas = Array.from({ length: spec.count }, (_, p) => this.sets[p % k] as readonly string[])
    this.setParts = Array.from({ length: k }, (_, j) => new Set(Array.from({ length: spec.count }, (_, p) => p).filter(p => p % k === j)))
    for (const v of voters) this.held.set(v, new Set())
    this.replicas.forEach((vs, p) => { for (const v of vs) this.held.get(v)?.add(p) })
  }

  /** The partitions a voter holds (none for a peer that is not one of the placed voters). */
  holding (voter: string): ReadonlySet<number> {
    return this.held.get(voter) ?? new Set()
  }

  /** The replica set a placed voter is in; undefined for any other peer. */
  setOf (voter: string): number | undefined {
    const i = this.voters.indexOf(voter)
    return i < 0 ? undefined : i % this.sets.length
  }

  /** The replica set partition `p` lives on. */
  setOfPartition (p: number): number {
    return p % this.sets.length
  }
}

/**
 * What a thunk touches, by partition: `reads` (keys and declared ranges it
 * reads), `writes` (keys it may write), and `active`: the partitions whose
 * replicas evaluate it (those it writes into; for a thunk that writes
 * nothing, those it reads; for one that touches no key, partition 0).
 * `cross`: it reads a partition other than one it is evaluated in, so
 * values have to be forwarded.
 */
export interface ThunkParts {
  readonly reads: ReadonlySet<number>
  readonly writes: ReadonlySet<number>
  readonly active: ReadonlySet<number>
  readonly cross: boolean
  /** A declared range that lies in more than one scope (the thunk is aborted everywhere with PartitionRangeError). */
  readonly badRange: boolean
}

export function thunkParts (thunk: Pick<Thunk, 'reads' | 'writes' | 'ranges'>, spec: PartitionSpec): ThunkParts {
  // Worked out once per thunk object and spec (the evaluator, forwarding, results and projections all ask).
  const known = memo.get(thunk)
  if (known !== undefined && known.spec === spec) return known.parts
  const parts = computeParts(thunk, spec)
  memo.set(thunk, { spec, parts })
  return parts
}

const memo = new WeakMap<object, { readonly spec: PartitionSpec, readonly parts: ThunkParts }>()

function computeParts (thunk: Pick<Thunk, 'reads' | 'writes' | 'ranges'>, spec: PartitionSpec): ThunkParts {
  const reads = new Set<number>()
  const writes = new Set<number>()
  let badRange = false
  for (const k of thunk.reads) reads.add(partitionOf(k, spec))
  for (const r of thunk.ranges ?? []) {
    const p = partitionOfRange(r, spec)
    if (p === undefined) badRange = true
    else reads.add(p)
  }
  for (const k of thunk.writes) writes.add(partitionOf(k, spec))
  const active = writes.size > 0 ? writes : reads.size > 0 ? reads : new Set([0])
  let cross = false
  for (const p of reads) if (!active.has(p) || active.size > 1) cross = true
  return { reads, writes, active, cross, badRange }
}

/** Whether a replica holding `holding` evaluates a thunk. */
export function evaluates (parts: ThunkParts, holding: ReadonlySet<number>): boolean {
  for (const p of parts.active) if (holding.has(p)) return true
  return false
}

/** Whether a thunk touches `parts`: it is evaluated there or reads there (a replica set stores it, to evaluate it or to forward its reads). */
export function touches (parts: ThunkParts, holding: ReadonlySet<number>): boolean {
  if (evaluates(parts, holding)) return true
  for (const p of parts.reads) if (holding.has(p)) return true
  return false
}

/**
 * The projection of a batch onto `parts`: for an observer that follows them
 * only, the thunks it evaluates; for replica set `set` (stage 2b; `parts` are
 * its partitions), the thunks that touch them, and the projection says
 * which set it is for. Indices are kept (a projected batch's ascend with
 * gaps) and `n` says how many the whole batch has. The batch itself when
 * every thunk is taken; undefined when none is.
 */
export function projectBatch (batch: Batch, parts: ReadonlySet<number>, spec: PartitionSpec, set?: number): Batch | undefined {
  const thunks = batch.thunks.filter(t => set !== undefined ? touches(thunkParts(t, spec), parts) : evaluates(thunkParts(t, spec), parts))
  if (thunks.length === batch.thunks.length) return batch
  if (thunks.length === 0) return undefined
  const digests = projectionDigests(batch, thunks)
  return { epoch: batch.epoch, coordinator: batch.coordinator, seq: batch.seq, thunks, projected: true, n: batch.n ?? batch.thunks.length, ...(set === undefined ? {} : { set }), ...(digests === undefined ? {} : { sig: batch.sig, digests }) }
}
