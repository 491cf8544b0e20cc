import type { PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import {
  AbortError, PartitionNotHeldError, PeerClosedError, QuorumUnavailableError, TS_ZERO, UnknownProcedureError, WorkerFailedError, declaredKeys, partitionOf, partitionOfRange, reconnoiter, timestampMs,
  type DeclaredKeys, type Logger, type RangeRead, type ReadConsistency, type Revocation, type Store, type SyncStatus, type Timestamp, type TxnResult, type Value
} from '@tideline/core'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { NetPeer, createGenesis, createInvite, decodeSigned, encodeSigned, peerIdOf, requestJoin, verifyGenesis, type MemberRole, type SignedGenesis, type TidelineLibp2p } from '@tideline/net-libp2p/peer'
import { WorkerBackend } from './backend.js'
import { claimSlot, loadIdentity, type Slot } from './identity.js'
import { checkArgs, registryOf, type ArgsOf, type ProcedureDef, type ProcedureName, type ResultOf } from './procedures.js'
import { changesBetween, entriesOf, matcherOf, readTarget, type Query, type QueryOptions, type SubscriptionCallback } from './queries.js'
import { HandOver, type HandOverStatus } from './hand-over.js'
import { Speculations } from './speculation.js'
import { speculate, verdictOf, type LocalResult } from './speculate.js'

/** How a database reaches its group. */
export interface OpenOptions<P> {
  /** The app's database name; a browser keeps one IndexedDB replica per tab slot under it. */
  readonly name: string
  readonly procedures: P
  /** Relay multiaddrs, each ending in /p2p/<relay id> (WebSockets for browsers). */
  readonly peers: readonly string[]
  /** A signed invite (text form) from a voter: how this peer is admitted. */
  readonly invite?: string
  /** The group creator's peer id: the genesis a voter sends back must be signed by it. */
  readonly creator?: string
  /** The group's signed genesis (text form). Otherwise it is fetched from a voter on first open and kept. */
  readonly genesis?: string
  /**
   * Founds a new group on the first open of this replica (with `role:
   * 'voter'`, and no `invite` or `genesis`): a genesis signed by this peer
   * (its `creator`) with this peer its only voter, kept in the replica like a
   * fetched one (later opens reopen it; a replica holding another group is
   * refused). Other tabs join with an invite from `invite()` and this peer's
   * id as `creator`: a group with no server member (docs/design/tabs.md §4).
   * Only the founding tab passes it: another tab (another slot and key)
   * would found another group.
   */
  readonly found?: { readonly groupId: string }
  /**
   * Browser: starts the Web Worker that holds the IndexedDB replica and evaluates
   * (its module calls `serveWorker(procedures)` from `@tideline/db/worker`).
   */
  readonly worker?: () => Worker
  /** In-process replica instead of a worker (Node: a LevelStore; tests: a MemoryStore). */
  readonly store?: Store
  /** Close `store` when the database closes (or fails to open). @default false: the caller owns it */
  readonly closeStore?: boolean
  /** @default the tab slot's stored identity (browser), or one kept in `store` */
  readonly privateKey?: PrivateKey
  /** @default the browser libp2p config (WebSockets to `peers`, WebRTC) */
  readonly createNode?: (privateKey: PrivateKey) => Promise<TidelineLibp2p>
  /** How long a call or strict read may wait (offline, no quorum) before it fails. @default 10000 */
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
  readonly logger?: Logger
  /**
   * In a group whose genesis splits its keys into partitions: the partitions
   * this tab replicates (evaluates and reads locally); reads of others go to
   * their replicas. @default every partition
   */
  readonly partitions?: readonly number[]
  /**
   * Join the dissemination tree (issue 23, core's tree.ts): this tab gets
   * batches and watermark entries from one parent (a relay, or another tab
   * over WebRTC through a relay's circuit) and passes them on to up to
   * `slots` tabs, instead of every relay sending it everything. For a group
   * whose every tab follows every partition. @default false
   */
  readonly tree?: boolean | { readonly slots?: number }
  /**
   * `voter`: this tab asks to be voted in (its invite must grant the voter
   * role, or it is a genesis voter) and serves as a voter while its page is
   * visible. Hidden past `handOverGraceMs`, on `pagehide` and on `freeze` it
   * hands over (the group installs an epoch without it), and shown again it
   * asks back (hand-over.ts). For long-lived tabs: installed apps, pinned
   * tabs. A quorum of the voters must stay up for anything to commit.
   * @default 'observer'
   */
  readonly role?: 'voter' | 'observer'
  /** How long a voter tab may stay hidden before it hands over. @default HAND_OVER_GRACE_MS (1 s) */
  readonly handOverGraceMs?: number
}

export interface CallOptions {
  readonly signal?: AbortSignal
  /** @default the database's timeoutMs */
  readonly timeoutMs?: number
  /**
   * Retrying with the same id never applies the call twice, within the
   * group's `txnRetentionMs` (24 h unless its genesis says otherwise) of its
   * first attempt; later, it is refused with ExpiredTransactionError.
   * @default a fresh random id
   */
  readonly clientTxnId?: string
  /**
   * Run the procedure on this replica at once and show its writes to
   * subscriptions (flagged pending) until the final result: the returned
   * promise's `local` resolves with that speculative result, and the final
   * one says whether it was `confirmed` or `corrected`.
   * @default false
   */
  readonly optimistic?: boolean
  /** When retrying with your own `clientTxnId`: the time of its first attempt (`Date.now()` then). @default now */
  readonly firstAt?: number
}

export interface ReadOptions extends QueryOptions {
  /** `strict` (default): linearizable, waits for the watermark. `snapshot`: this replica's state now, at once. */
  readonly consistency?: ReadConsistency
  readonly signal?: AbortSignal
  readonly timeoutMs?: number
}

/** A call's final result: the same on every replica (`speculation`: how an optimistic call's local result compared). */
export type CallResult<R> =
  | { readonly status: 'committed', readonly value: R, readonly ts: Timestamp, readonly duplicate?: boolean, readonly speculation?: 'confirmed' | 'corrected' }
  | { readonly status: 'aborted', readonly reason: string, readonly error: string, readonly ts: Timestamp, readonly duplicate?: boolean, readonly speculation?: 'confirmed' | 'corrected' }

/** A call in flight: the final result, and (optimistic calls) the speculative one computed on this replica at once (undefined when it was not or could not be). */
export type CallPromise<R> = Promise<CallResult<R>> & { readonly local: Promise<LocalResult<R> | undefined> }

export interface ReadResult {
  readonly ts: Timestamp
  /** Present keys only. */
  readonly values: Readonly<Record<string, Value>>
  /** A range read's live keys and values in the range's order (absent for a list of keys). */
  readonly entries?: ReadonlyArray<readonly [string, Value]>
}

export interface DatabaseStatus {
  readonly id: string
  readonly role: 'voter' | 'observer'
  /**
   * `online` while at least one voter is connected; `connecting` from the
   * open until the first voter connects (for at most CONNECTING_MS), when
   * there are peers to reach; `offline` otherwise (working from the replica).
   */
  readonly network: 'connecting' | 'offline' | 'online'
  readonly votersConnected: number
  /** Voters of the current epoch. */
  readonly voters: number
  /** Of the `peers` this database was opened with (its relays), how many it is connected to now, and how many there are. */
  readonly peersConnected: number
  readonly peersGiven: number
  readonly connections: number
  readonly epoch: number
  readonly groupId: string
  readonly watermark: Timestamp
  /** Everything below this is evaluated here. */
  readonly frontier: Timestamp
  /** How far this replica's state trails the wall clock, in ms. */
  readonly lagMs: number
  readonly evaluated: number
  readonly digest: string
  readonly inflight: number
  readonly unevaluated: number
  /** Set when the database stopped serving (worker or store failure). */
  readonly failed: string | undefined
  /** Set when another replica reported a different result digest for the same history: a procedure is not deterministic (or a bug). */
  readonly diverged: { readonly peer: string, readonly count: number } | undefined
  /** The browser tab slot this replica lives in. */
  readonly slot: number | undefined
  /** Whether local reads are current: `snapshot` (received/total items), `catching-up` (received/total batches) or `live`. */
  readonly sync: SyncStatus
  readonly counters: Readonly<Record<string, number>>
  /** The dissemination tree (`tree` in openDatabase): the peer this tab hangs under (a relay or a tab), and the tabs that hang under it. */
  readonly tree: { readonly parent?: string, readonly children: readonly string[] }
  /** In a partitioned group, the partitions this replica holds (its reads of others go to their replicas). */
  readonly holding?: readonly number[]
  /** A tab opened with `role: 'voter'`: its page lifecycle (whether it is visible, and its hand-overs). */
  readonly handOver?: HandOverStatus
}

export interface ReconnaissanceOptions<P, K extends ProcedureName<P>> {
  /** Keys whose values decide the transaction's key sets. */
  readonly keys: readonly string[]
  /** Builds the call from what was read; the procedure re-checks those values and aborts with `staleReason` if they changed. */
  readonly plan: (values: Readonly<Record<string, Value>>, attempt: number) => { readonly procedure: K, readonly args: ArgsOf<P, K> }
  /** @default 5 */
  readonly maxAttempts?: number
  /** @default 'stale' */
  readonly staleReason?: string
  readonly signal?: AbortSignal
}

interface Subscription {
  readonly target: readonly string[] | RangeRead
  readonly matches: (key: string) => boolean
  /** A range with a limit: a pending deletion may pull in a key its last read did not hold. */
  readonly limited: boolean
  readonly cb: SubscriptionCallback
  readonly onError: ((err: Error) => void) | undefined
  /** The last result called back, by key (canonical text of each value), to tell what changed. */
  seen: Map<string, string> | undefined
  running: boolean
  dirty: boolean
  last: Timestamp | undefined
  /** Settles when the refresh under way (if any) has called back. */
  idle: Promise<void>
  /** The speculations' version it last showed. */
  shown: number
  /** The replica's part of what it last showed (before pending writes), to show new speculations over at once. */
  base: { readonly ts: Timestamp, readonly entries: ReadonlyArray<readonly [string, Value]> } | undefined
}

const DEFAULT_TIMEOUT_MS = 10_000

/** A limited range read longer by the pending writes, so that pending deletions in it cannot leave it short once applied. */
function widened (target: readonly string[] | RangeRead, pendingWrites: number): readonly string[] | RangeRead {
  if (Array.isArray(target) || (target as RangeRead).limit === undefined) return target
  const r = target as RangeRead
  return { ...r, limit: (r.limit as number) + pendingWrites }
}
const GENESIS_META = 'tideline/genesis'

/** What signs invites: this peer's key, and the genesis they admit to. */
interface Inviter { readonly key: PrivateKey, readonly genesis: SignedGenesis }

/** How long an invite from `invite()` is valid unless told. */
const INVITE_VALID_MS = 86_400_000

/** How long a closing voter tab waits for its hand-over. */
const CLOSE_LEAVE_MS = 2_000

/** How long a database says `connecting` (not `offline`) after it opens, while no voter has connected yet. */
export const CONNECTING_MS = 5_000

function randomId (): string {
  const b = new Uint8Array(16)
  crypto.getRandomValues(b)
  return Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
}

/**
 * An open Tideline database: a replica of the group's state that calls
 * procedures through the voters, reads and subscribes locally, and whose
 * every result is final and the same on every peer.
 */
export class Database<P extends Record<string, ProcedureDef<any, any>>> {
  private readonly net: NetPeer
  private readonly procedures: P
  private readonly backend: WorkerBackend | undefined
  private readonly slot: Slot | undefined
  private readonly timeoutMs: number
  private readonly subs = new Set<Subscription>()
  /** Optimistic calls' expected writes, shown to subscriptions until final (speculation.ts). */
  private readonly speculations = new Speculations()
  /** Moves whenever the speculations change, so a subscription shows them even at an unchanged timestamp. */
  private speculated = 0
  private readonly stopApplied: () => void
  private closed = false
  /** True from the open until a voter first connects or CONNECTING_MS passed (and only if there are peers to reach). */
  private connecting: boolean
  private readonly connectingTimer: ReturnType<typeof setTimeout> | undefined
  /** A store this database closes with itself (`closeStore`). */
  private readonly ownedStore: Store | undefined
  /** A voter tab's page lifecycle (`role: 'voter'`). */
  private readonly handOver: HandOver | undefined
  private readonly peersGiven: number
  /** This peer's key and the group's signed genesis, to sign invites with (`invite`). */
  private readonly inviter: Inviter | undefined

  /** @internal use openDatabase */
  constructor (net: NetPeer, procedures: P, backend: WorkerBackend | undefined, slot: Slot | undefined, timeoutMs: number, peers: number, extras: { readonly ownedStore?: Store | undefined, readonly handOver?: HandOver | undefined, readonly inviter?: Inviter } = {}) {
    this.net = net
    this.ownedStore = extras.ownedStore
    this.handOver = extras.handOver
    this.inviter = extras.inviter
    this.connecting = peers > 0
    this.peersGiven = peers
    const done = (): void => { this.connecting = false }
    net.online.then(done, done)
    this.connectingTimer = this.connecting ? setTimeout(done, CONNECTING_MS) : undefined
    ;(this.connectingTimer as { unref?: () => void } | undefined)?.unref?.()
    this.procedures = procedures
    this.backend = backend
    this.slot = slot
    this.timeoutMs = timeoutMs
    this.stopApplied = net.peer.onApplied(e => {
      const passed = this.speculations.size === 0 ? [] : this.speculations.passed(e.frontier)
      if (passed.length > 0) this.speculated++
      for (const s of this.subs) if (e.reset === true || e.written.some(s.matches) || passed.some(s.matches)) this.refresh(s)
    })
  }

  /** This replica's peer id. */
  get id (): string {
    return this.net.id
  }

  /** Settles when the network is up (it keeps reconnecting after that on its own). */
  get online (): Promise<void> {
    return this.net.online
  }

  /**
   * Settles once this replica holds everything the group committed before
   * it was asked (a strict read of no keys: a voter's timestamp, then the
   * local frontier past it), with the timestamp it is synced to. A new tab far
   * behind gets there by snapshot; subscription callbacks after it never show
   * an older state. Rejects like a strict read (offline: QuorumUnavailableError
   * after `timeoutMs`).
   */
  async synced (options: { readonly timeoutMs?: number, readonly signal?: AbortSignal } = {}): Promise<Timestamp> {
    await this.online
    return (await this.read([], { consistency: 'strict', ...options })).ts
  }

  /**
   * Calls procedure `name` with `args`: submitted through a voter, ordered,
   * evaluated by every replica; resolves with its final result. Offline it
   * waits (within `timeoutMs` / `signal`) and then fails with
   * QuorumUnavailableError; retry with the same `clientTxnId` to be sure it
   * applies once.
   */
  call<K extends ProcedureName<P>> (name: K, args: ArgsOf<P, K>, options: CallOptions = {}): CallPromise<ResultOf<P, K>> {
    let told: (r: LocalResult<ResultOf<P, K>> | undefined) => void = () => {}
    const local = new Promise<LocalResult<ResultOf<P, K>> | undefined>(resolve => { told = resolve })
    const final = this.callFinal(name, args, options, r => { told(r) })
    // A call that fails before any speculation still settles `local`.
    final.then(() => { told(undefined) }, () => { told(undefined) })
    return Object.assign(final, { local })
  }

  private async callFinal<K extends ProcedureName<P>> (name: K, args: ArgsOf<P, K>, options: CallOptions, onLocal: (r: LocalResult<ResultOf<P, K>> | undefined) => void): Promise<CallResult<ResultOf<P, K>>> {
    this.assertOpen()
    const def = Object.hasOwn(this.procedures, name) ? this.procedures[name] : undefined
    const registered = registryOf(this.procedures).procedures.get(name)
    if (def === undefined || registered === undefined) throw new UnknownProcedureError(`no procedure named ${JSON.stringify(name)}`)
    if (options.signal?.aborted === true) throw new AbortError('aborted')
    const checked = await checkArgs(name, def as ProcedureDef<unknown, unknown>, args) as Value
    const req = { clientTxnId: options.clientTxnId ?? randomId(), procedure: name, hash: registered.hash, args: checked, firstAt: options.firstAt ?? Date.now() }
    let guess: LocalResult<ResultOf<P, K>> | undefined
    let spec: number | undefined
    if (options.optimistic === true) {
      try {
        const s = await speculate(this.net.peer, this.speculations, registryOf(this.procedures), registered, req, keys => this.heldBySubscriptions(keys))
        guess = s.result as LocalResult<ResultOf<P, K>>
        if (s.writes.length > 0) {
          spec = this.speculations.add(s.writes)
          this.speculationsChanged(this.speculations.keysOf(spec))
        }
      } catch {
        // No speculation (the replica cannot read yet, or is closing): the call goes on without one.
      }
    }
    onLocal(guess)
    const keys = spec === undefined ? [] : this.speculations.keysOf(spec)
    let result: TxnResult
    try {
      result = await this.guardFailure(this.net.peer.submit(req, { timeoutMs: options.timeoutMs ?? this.timeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }) }))
    } catch (err) {
      if (spec !== undefined && this.speculations.settle(spec, undefined)) this.speculationsChanged(keys)
      throw err
    }
    if (spec !== undefined) {
      // Aborted: nothing of it will land. Committed: kept until the replica has evaluated it (maybe already).
      const dropped = this.speculations.settle(spec, result.status === 'committed' ? result.ts : undefined)
      const passed = this.speculations.passed(this.net.peer.status().frontier)
      if (dropped || passed.length > 0) this.speculationsChanged([...keys, ...passed])
    }
    const final = result as CallResult<ResultOf<P, K>>
    return guess === undefined ? final : { ...final, speculation: verdictOf(guess, result) }
  }

  /**
   * The speculations changed for `keys`: the subscriptions that show any of
   * them call back with the new ones over the replica's state they last
   * showed, at once (nothing in the replica changed: no read needed), or,
   * when a read is under way or a limit could need more keys, read again.
   */
  private speculationsChanged (keys: readonly string[]): void {
    this.speculated++
    for (const s of this.subs) {
      if (!keys.some(s.matches)) continue
      if (s.running || s.base === undefined || s.limited) this.refresh(s)
      else this.show(s, s.base.ts, s.base.entries)
    }
  }

  /**
   * The values of `keys` as this tab's subscriptions last showed them (the
   * replica's part), when they hold them all: what the user saw when they
   * acted, the basis an optimistic guess should start from, with no read
   * from the worker (which may be busy settling a run). A subscription with
   * no read under way or due shows what the replica holds now; one whose
   * read is under way is at most the runs since behind, which the final
   * result corrects if they mattered. Undefined when one is not held.
   */
  private heldBySubscriptions (keys: readonly string[]): Record<string, Value> | undefined {
    const out: Record<string, Value> = {}
    for (const key of keys) {
      let held = false
      for (const s of this.subs) {
        if (s.base === undefined || s.limited || !s.matches(key)) continue
        const found = s.base.entries.find(([k]) => k === key)
        if (found !== undefined) out[key] = found[1]
        held = true
        break
      }
      if (!held) return undefined
    }
    return out
  }

  /** Calls a subscription back with the replica's `entries` at `ts` and this tab's pending writes over them. */
  private show (sub: Subscription, ts: Timestamp, entries: ReadonlyArray<readonly [string, Value]>, read?: Readonly<Record<string, Value>>): void {
    sub.last = ts
    sub.shown = this.speculated
    sub.base = { ts, entries }
    let shown = entries
    let values = read ?? Object.fromEntries(entries)
    let pending: readonly string[] = []
    // A limited range read longer for pending deletions is cut back to its limit there too.
    if (read === undefined || this.speculations.touches(sub.matches)) ({ entries: shown, values, pending } = this.speculations.apply(sub.target, entries))
    const { changes, now } = changesBetween(sub.seen, shown)
    sub.seen = now
    sub.cb(values, ts, { entries: shown, changes, pending })
  }

  /**
   * The keys a call of `name` with `args` declares (its procedure's `keys`,
   * checked as the voters check it): what it may read and write. Throws
   * UnknownProcedureError or ProcedureError where a call would fail so.
   */
  keysOf<K extends ProcedureName<P>> (name: K, args: ArgsOf<P, K>): DeclaredKeys {
    const proc = Object.hasOwn(this.procedures, name) ? registryOf(this.procedures).procedures.get(name) : undefined
    if (proc === undefined) throw new UnknownProcedureError(`no procedure named ${JSON.stringify(name)}`)
    return declaredKeys(proc, args as Value)
  }

  /**
   * Revokes members (`{ kind: 'peer', id }`) and invites (`{ kind: 'invite',
   * id: await inviteDigest(invite) }`) from the next epoch change on, all in
   * that one change; resolves with the epoch that holds them. Only a member
   * whose invite grants `admin` may (the voters refuse others with
   * PermissionDeniedError). From then on a revoked member is hung up on and
   * its calls are refused; a revoked invite admits no one.
   */
  async revoke (targets: readonly Revocation[], options: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<number> {
    this.assertOpen()
    return await this.guardFailure(this.net.peer.revoke(targets, { timeoutMs: options.timeoutMs ?? this.timeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }) }))
  }

  /**
   * Reads a list of keys, or every live key of a range (`{ prefix }` or
   * `{ start, end }`, in key order, `limit` and `reverse` in the options;
   * the result's `entries` keep the order): strict (default) at a fresh
   * timestamp once the watermark passes it, or `snapshot` from this replica
   * at once. A range read is one ordered scan of the local replica at that
   * timestamp, so it sees no phantom: exactly the keys live there then.
   */
  async read (query: Query, options: ReadOptions = {}): Promise<ReadResult> {
    this.assertOpen()
    return await this.guardFailure(this.net.peer.read(readTarget(query, options), {
      consistency: options.consistency ?? 'strict',
      timeoutMs: options.timeoutMs ?? this.timeoutMs,
      ...(options.signal === undefined ? {} : { signal: options.signal })
    }))
  }

  /**
   * Calls `cb` with the values of a list of keys or of a range's live keys
   * (one consistent snapshot of this replica) now and after every evaluated
   * run that wrote one of them (for a range: any key in it), with the result
   * in order and which keys were added, updated or removed since the last
   * call; works offline, from the local replica. Returns the function that
   * stops it.
   */
  subscribe (query: Query, cb: SubscriptionCallback, options: QueryOptions & { onError?: (err: Error) => void } = {}): () => void {
    this.assertOpen()
    const target = readTarget(Array.isArray(query) ? [...(query as readonly string[])] : query, options)
    this.assertFollowed(target)
    const sub: Subscription = { target, matches: matcherOf(target), limited: !Array.isArray(target) && (target as RangeRead).limit !== undefined, cb, onError: options.onError, seen: undefined, running: false, dirty: false, last: undefined, idle: Promise.resolve(), shown: -1, base: undefined }
    this.subs.add(sub)
    this.refresh(sub)
    return () => { this.subs.delete(sub) }
  }

  /**
   * A tab that follows some partitions evaluates only theirs, so a
   * subscription elsewhere would never be refreshed: it is refused
   * (PartitionNotHeldError). Reads of other partitions go to their replicas.
   */
  private assertFollowed (target: readonly string[] | RangeRead): void {
    const spec = this.net.peer.config.partitions
    const holding = this.net.peer.status().holding
    if (spec === undefined || holding === undefined) return
    const keys = Array.isArray(target) ? target as readonly string[] : []
    const parts = Array.isArray(target) ? keys.map(k => partitionOf(k, spec)) : [partitionOfRange((target as RangeRead).range, spec) ?? -1]
    const outside = parts.findIndex(p => !holding.includes(p))
    if (outside < 0) return
    const what = Array.isArray(target) ? `key ${JSON.stringify(keys[outside])} is in partition ${parts[outside] as number}` : 'the range is in a partition'
    throw new PartitionNotHeldError(`this tab follows partitions ${holding.join(', ')} and ${what} it does not follow: subscribe to those it follows (openDatabase({ partitions })), or read() the others`)
  }

  private refresh (sub: Subscription): void {
    if (sub.running) { sub.dirty = true; return }
    sub.running = true
    sub.dirty = false
    const version = this.speculated
    const target = this.speculations.touches(sub.matches) ? widened(sub.target, this.speculations.writes) : sub.target
    sub.idle = this.net.peer.read(target, { consistency: 'snapshot' }).then(r => {
      if (!this.subs.has(sub) || (sub.last !== undefined && (r.ts < sub.last || (r.ts === sub.last && version === sub.shown)))) return
      this.show(sub, r.ts, entriesOf(sub.target, r.values, r.entries), target === sub.target ? r.values : undefined)
    }, (err: unknown) => {
      if (this.subs.has(sub)) sub.onError?.(err as Error)
    }).finally(() => {
      sub.running = false
      // Also while closing: close() waits for what was evaluated before it (subs are cleared after).
      if (sub.dirty && this.subs.has(sub)) this.refresh(sub)
    })
  }

  /**
   * A dependent transaction (its key set depends on data): reads `keys`, lets
   * `plan` build the call, and tries again while the procedure reports the
   * values it was planned on as stale (bounded by `maxAttempts`).
   */
  async reconnoiter<K extends ProcedureName<P>> (options: ReconnaissanceOptions<P, K>): Promise<CallResult<ResultOf<P, K>>> {
    this.assertOpen()
    const registry = registryOf(this.procedures)
    const result = await reconnoiter({
      read: (keys, o) => this.read(keys, o ?? {}),
      submit: async (req, o) => await this.net.peer.submit(req, { timeoutMs: this.timeoutMs, ...(o?.signal === undefined ? {} : { signal: o.signal }) })
    }, {
      keys: options.keys,
      plan: (values, attempt) => {
        const p = options.plan(values, attempt)
        const hash = registry.procedures.get(p.procedure)?.hash
        if (hash === undefined) throw new UnknownProcedureError(`no procedure named ${JSON.stringify(p.procedure)}`)
        return { procedure: p.procedure, hash, args: p.args as Value }
      },
      clientTxnId: () => randomId(),
      ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
      ...(options.staleReason === undefined ? {} : { staleReason: options.staleReason }),
      ...(options.signal === undefined ? {} : { signal: options.signal })
    })
    return result as CallResult<ResultOf<P, K>>
  }

  /**
   * Signs an invite to this group (text form, for `openDatabase({ invite })`
   * with this group's `creator`): for `peer` only, or for any holder; `role`
   * `voter` lets a tab be voted in (`role: 'voter'`). Only a genesis voter
   * may invite (the founder of a group of tabs): others get
   * InvalidCredentialError. @default role writer, valid for a day
   */
  async invite (options: { readonly role?: MemberRole, readonly peer?: string, readonly name?: string, readonly validForMs?: number } = {}): Promise<string> {
    this.assertOpen()
    const inviter = this.inviter as Inviter
    return encodeSigned(await createInvite(inviter.key, inviter.genesis, {
      expiresAt: Date.now() + (options.validForMs ?? INVITE_VALID_MS),
      role: options.role ?? 'writer',
      ...(options.peer === undefined ? {} : { peer: options.peer }),
      ...(options.name === undefined ? {} : { name: options.name })
    }))
  }

  status (): DatabaseStatus {
    const s = this.net.peer.status()
    let connections = 0
    try { connections = this.net.node.getConnections().length } catch { connections = 0 }
    const votersConnected = this.net.connectedVoters()
    const failed = this.backend?.failed?.message ?? s.failed
    return {
      id: s.id,
      role: s.role,
      // A voter counts itself: one that reaches a majority of the voters (alone, if it is the only one) is online.
      network: votersConnected > 0 || (s.role === 'voter' && 2 * (votersConnected + 1) > s.voters.length) ? 'online' : this.connecting ? 'connecting' : 'offline',
      votersConnected,
      voters: s.voters.length,
      peersConnected: this.net.connectedPeers(),
      peersGiven: this.peersGiven,
      connections,
      epoch: s.epoch,
      groupId: this.net.genesis.groupId,
      watermark: s.watermark,
      frontier: s.frontier,
      // Nothing evaluated yet (frontier at zero): no lag to speak of.
      lagMs: s.frontier === TS_ZERO ? 0 : Math.max(0, Date.now() - timestampMs(s.frontier)),
      evaluated: s.evaluated,
      digest: s.digest,
      inflight: s.inflight,
      unevaluated: s.unevaluated,
      failed,
      diverged: s.diverged === undefined ? undefined : { peer: s.diverged.peer, count: s.diverged.count },
      slot: this.slot?.index,
      sync: s.sync,
      counters: s.counters,
      tree: s.tree,
      ...(s.holding === undefined ? {} : { holding: s.holding }),
      ...(this.handOver === undefined ? {} : { handOver: this.handOver.status() })
    }
  }

  /** Waits (until `deadline`) for every subscription refresh under way, and the ones they queue, to call back. */
  private async settleSubscriptions (deadline: number): Promise<void> {
    for (;;) {
      const running = [...this.subs].filter(sub => sub.running)
      const left = deadline - Date.now()
      if (running.length === 0 || left <= 0) return
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([Promise.all(running.map(async sub => { await sub.idle })), new Promise<void>(resolve => { timer = setTimeout(resolve, left) })])
      clearTimeout(timer)
    }
  }

  /**
   * Stops the network, closes the replica (and its worker), and frees the tab
   * slot. Subscriptions first get what was evaluated before the close (their
   * refreshes under way finish, for up to a second).
   */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.connectingTimer)
    await this.settleSubscriptions(Date.now() + 1_000)
    this.subs.clear()
    this.stopApplied()
    this.handOver?.stop()
    try {
      // A voter tab hands over first, so the group goes on without waiting for its failure detector.
      if (this.handOver !== undefined && this.net.peer.role === 'voter') await this.net.peer.leave({ timeoutMs: CLOSE_LEAVE_MS }).catch(() => {})
      await this.net.stop()
      await this.backend?.close()
      await this.ownedStore?.close()
    } finally {
      this.slot?.release()
    }
  }

  private assertOpen (): void {
    if (this.closed) throw new PeerClosedError('the database is closed')
    const f = this.backend?.failed
    if (f !== undefined) throw f
  }

  /** A store failure caused by a dead worker is reported as the worker's failure. */
  private async guardFailure<T> (p: Promise<T>): Promise<T> {
    try {
      return await p
    } catch (err) {
      const f = this.backend?.failed
      if (f !== undefined && (err as Error).name === 'StoreFailedError') throw new WorkerFailedError(f.message, { cause: err })
      throw err
    }
  }
}

/**
 * Opens a database. Local-first: once the replica is open (and the group's
 * genesis is known, which after the first open it is, from the replica)
 * it resolves, and reads and subscriptions answer from local data while the
 * network comes up in the background.
 */
export async function openDatabase<P extends Record<string, ProcedureDef<any, any>>> (options: OpenOptions<P>): Promise<Database<P>> {
  const registry = registryOf(options.procedures)
  const voter = options.role === 'voter'
  if (options.role !== undefined && options.role !== 'voter' && options.role !== 'observer') throw new TypeError(`role must be 'voter' or 'observer', not ${String(options.role)}`)
  if (voter && options.partitions !== undefined) throw new TypeError('a voter tab holds every partition: give it no `partitions`')
  if (voter && options.tree !== undefined && options.tree !== false) throw new TypeError('a voter tab is not in the dissemination tree: give it no `tree`')
  if (options.found !== undefined && (!voter || options.invite !== undefined || options.genesis !== undefined)) throw new TypeError('`found` founds a group with this tab its voter: it goes with `role: \'voter\'`, and with no `invite` or `genesis`')
  let slot: Slot | undefined
  let backend: WorkerBackend | undefined
  let store: Store
  // The first node is made early when the genesis must be fetched, and then handed to the peer.
  const early: { node?: TidelineLibp2p } = {}
  try {
    if (options.worker !== undefined) {
      slot = await claimSlot(options.name)
      backend = new WorkerBackend(options.worker())
      await backend.open(`tideline/${options.name}/${slot.index}`, registry.hash)
      store = backend.store
    } else if (options.store !== undefined) {
      store = options.store
    } else {
      throw new TypeError('openDatabase needs `worker` (browser) or `store` (in-process)')
    }
    options.signal?.throwIfAborted()
    const privateKey = options.privateKey ?? await loadIdentity(store)
    const createNode = options.createNode ?? (async (key: PrivateKey) => {
      const { createBrowserLibp2p } = await import('@tideline/net-libp2p/browser')
      return await createBrowserLibp2p({ privateKey: key, allowPeer: () => true, relays: options.peers })
    })
    const genesis = await resolveGenesis(options, store, privateKey, registry.hash, async () => {
      early.node ??= await createNode(privateKey)
      return early.node
    })
    const net = await NetPeer.open({
      privateKey,
      genesis,
      ...(options.invite === undefined ? {} : { invite: decodeSigned(options.invite) }),
      registry,
      store,
      ...(backend === undefined ? {} : { applier: backend.applier }),
      createNode: async key => {
        const node = early.node
        delete early.node
        return node ?? await createNode(key)
      },
      peers: options.peers,
      // Voters that are tabs (a group with no server member) are reached by id through the relays' circuits.
      relays: options.peers,
      // An observer hears every voter directly; it does not need watermark gossip. A voter follows it.
      gossip: voter,
      candidate: voter,
      ...(options.partitions === undefined ? {} : { partitions: options.partitions }),
      ...(options.tree === undefined || options.tree === false ? {} : { tree: { join: true, ...(options.tree === true ? {} : options.tree) } }),
      ...(options.logger === undefined ? {} : { logger: options.logger })
    })
    const handOver = voter ? new HandOver(net.peer, { ...(options.handOverGraceMs === undefined ? {} : { graceMs: options.handOverGraceMs }), logger: options.logger }) : undefined
    const db = new Database(net, options.procedures, backend, slot, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.peers.length, { ownedStore: options.closeStore === true ? options.store : undefined, handOver, inviter: { key: privateKey, genesis } })
    backend?.onFailure(err => { options.logger?.('worker-failed', { error: err.message }) })
    return db
  } catch (err) {
    // A node made for fetching the genesis and never handed over would keep the process alive.
    try { await early.node?.stop() } catch {}
    await backend?.close().catch(() => {})
    if (options.closeStore === true) await options.store?.close().catch(() => {})
    slot?.release()
    if ((err as Error).name === 'StoreFailedError' && backend?.failed !== undefined) throw new WorkerFailedError(backend.failed.message, { cause: err })
    throw err
  }
}

/** The group's signed genesis: given, kept in the replica, or fetched from the first voter that admits this peer. */
async function resolveGenesis (options: OpenOptions<unknown>, store: Store, key: PrivateKey, registryHash: string, node: () => Promise<TidelineLibp2p>): Promise<SignedGenesis> {
  if (options.genesis !== undefined) {
    const g = decodeSigned(options.genesis)
    await store.write({ meta: [[GENESIS_META, options.genesis]], durability: 'strict' })
    return g
  }
  const kept = await store.getMeta(GENESIS_META)
  if (typeof kept === 'string') {
    const g = decodeSigned(kept)
    // A replica founded before opens its own group again; one of another group is not taken for it.
    if (options.found !== undefined) {
      const held = await verifyGenesis(g)
      const me = peerIdFromPrivateKey(key).toString()
      if (held.groupId !== options.found.groupId || held.creator !== me) throw new TypeError(`this replica holds group ${held.groupId} (created by ${held.creator}), not one this tab founded as ${options.found.groupId}`)
    }
    return g
  }
  if (options.found !== undefined) {
    const founded = await createGenesis(key, { groupId: options.found.groupId, voters: [peerIdFromPrivateKey(key).toString()], registryHash })
    await store.write({ meta: [[GENESIS_META, encodeSigned(founded)]], durability: 'strict' })
    return founded
  }
  if (options.invite === undefined) throw new TypeError('a first open needs `genesis`, or `invite` (and `creator`) to fetch it from a voter')
  const invite = decodeSigned(options.invite)
  const n = await node()
  const errors: string[] = []
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  while (Date.now() < deadline) {
    for (const addr of options.peers) {
      const voter = peerIdOf(addr)
      if (voter === undefined) continue
      try {
        const signal = AbortSignal.any([AbortSignal.timeout(3_000), ...(options.signal === undefined ? [] : [options.signal])])
        await n.dial(multiaddr(addr), { signal })
        const { signedGenesis } = await requestJoin(n, voter, { invite, ...(options.creator === undefined ? {} : { creator: options.creator }), signal })
        await store.write({ meta: [[GENESIS_META, encodeSigned(signedGenesis)]], durability: 'strict' })
        return signedGenesis
      } catch (err) {
        const e = err as Error
        // Credentials that were refused will be refused again.
        if (e.name === 'NotMemberError' || e.name === 'InvalidCredentialError') throw e
        errors.push(`${voter}: ${e.message}`)
      }
    }
    options.signal?.throwIfAborted()
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  throw new QuorumUnavailableError(`could not fetch the group's genesis from any of ${options.peers.length} peers: ${errors.slice(-3).join('; ')}`)
}
