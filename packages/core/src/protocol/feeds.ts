import type { Message, Span } from '../messages.js'
import { projectBatch } from '../partition.js'
import * as C from '../constants.js'
import { maxTimestamp, timestampMs, TS_ZERO, type Timestamp } from '../timestamp.js'
import type { Batch, Thunk, WatermarkEntry } from '../types.js'
import { writeChunks } from './batcher.js'
import { count, send } from './emit.js'
import { kickEvaluator } from './evaluator.js'
import { projectedParts } from './partitions.js'
import { storedParts, storedSet, voidRange } from './partial.js'
import type { Feed, PartState } from './part-state.js'
import { roleOf, type PeerState } from './state.js'
import { isDownTarget, publishDown, servedBy } from './tree.js'
import { checkpointsDown } from './divergence.js'

/**
 * Observers that follow some partitions only (DESIGN.md §13): they receive
 * projections of batches, not batches.
 *
 * - A coordinator sends such an observer, of each batch, only the thunks it
 *   evaluates (partition.ts projectBatch), and nothing for a batch with none.
 *   Every sequence number stays accounted for: a `span` on a message from
 *   the coordinator (or on a gap answer from a voter) says which of its
 *   batches held nothing for the observer, and the observer's evaluation
 *   passes those (Stream.voids). A span only ever names batches its sender
 *   looked at, so a span lost, or never sent (after the coordinator
 *   restarted), leaves a gap the observer fills from a voter.
 * - Voters send such an observer their watermark entry when a batch they hold
 *   had something for it (until their entry passed it), and otherwise only at
 *   the idle heartbeat, not at every batch: an observer pays for its
 *   partitions' transactions, and a little per second, not for the group's.
 *
 * Observers with the same partitions form one feed, keyed by their holding
 * tag. Every full replica (a voter, a placed replica, an observer of
 * everything) still gets whole batches and refuses projections.
 */

/** A feed hears a voter that owes it nothing every this many idle heartbeats (an observer's silence detection allows far more). */
const FEED_HEARTBEATS = 2

/** The feeds of this voter's observers now (observers that left are dropped with their feed). */
function feeds (s: PeerState): Map<string, { readonly feed: Feed, readonly observers: string[] }> {
  const p = s.parts as PartState
  const out = new Map<string, { feed: Feed, observers: string[] }>()
  for (const [o, parts] of p.observerParts) {
    if (!s.observers.has(o)) { p.observerParts.delete(o); continue }
    const tag = [...parts].sort((a, b) => a - b).join('.')
    let entry = out.get(tag)
    if (entry === undefined) {
      let feed = p.feeds.get(tag)
      if (feed === undefined) { feed = { parts, want: TS_ZERO, sent: TS_ZERO, sentEpoch: -1, sentAt: -Infinity, pending: undefined }; p.feeds.set(tag, feed) }
      entry = { feed, observers: [] }
      out.set(tag, entry)
    }
    entry.observers.push(o)
  }
  for (const tag of p.feeds.keys()) if (!out.has(tag)) p.feeds.delete(tag)
  return out
}

/** A voter holds a batch (its own or another's): the feeds it has something for want this voter's entry past it. */
export function noteFeedBatches (s: PeerState, batches: readonly Batch[]): void {
  const p = s.parts
  if (p === undefined || p.observerParts.size === 0 || batches.length === 0) return
  for (const { feed } of feeds(s).values()) {
    for (const batch of batches) {
      const last = projectBatch(batch, feed.parts, p.spec)?.thunks.at(-1)
      if (last !== undefined) feed.want = maxTimestamp(feed.want, last.ts)
    }
  }
}

/**
 * A coordinator's flush: whole batches to the observers of everything,
 * projections to each feed that has something in them, and a span over what
 * it had nothing in.
 */
export function flushToObservers (s: PeerState, batches: readonly Batch[], wm: readonly WatermarkEntry[]): void {
  const p = s.parts
  for (const chunk of writeChunks(batches)) toWholeObservers(s, { t: 'write', batches: chunk, wm })
  if (p === undefined || p.observerParts.size === 0) return
  for (const { feed, observers } of feeds(s).values()) {
    let mine: Batch[] = []
    for (const b of batches) {
      const q = feed.pending
      if (q !== undefined && (q.epoch !== b.epoch || q.to + 1 !== b.seq)) {
        // Not the next seq (a new epoch): what came before goes out first, said up to where it ends.
        sendRun(s, feed, observers, mine, wm)
        mine = []
        const left = feed.pending
        feed.pending = undefined
        if (left !== undefined) for (const o of observers) send(s, o, { t: 'wm', wm: [], span: left })
      }
      const proj = projectBatch(b, feed.parts, p.spec)
      if (proj !== undefined) {
        mine.push(proj)
        feed.want = maxTimestamp(feed.want, (proj.thunks.at(-1) as Thunk).ts)
      }
      // The coordinator is the sender: a span on its own message does not name it.
      feed.pending = feed.pending === undefined ? { epoch: b.epoch, from: b.seq, to: b.seq } : { ...feed.pending, to: b.seq }
    }
    sendRun(s, feed, observers, mine, wm)
  }
}

/** Sends a run of consecutive seqs' projections, each chunk with the span up to its last batch (the rest stays pending). */
function sendRun (s: PeerState, feed: Feed, observers: readonly string[], mine: readonly Batch[], wm: readonly WatermarkEntry[]): void {
  for (const chunk of writeChunks(mine)) {
    const span = take(feed, (chunk.at(-1) as Batch).seq)
    tell(s, feed, observers, wm, { t: 'write', batches: chunk, wm, ...(span === undefined ? {} : { span }) })
  }
}

/** The pending span up to seq `upTo` (cut there: what lies beyond it is not said yet). */
function take (feed: Feed, upTo: number): Span | undefined {
  const q = feed.pending
  if (q === undefined || q.from > upTo) return undefined
  if (q.to <= upTo) { feed.pending = undefined; return q }
  feed.pending = { ...q, from: upTo + 1 }
  return { ...q, to: upTo }
}

function tell (s: PeerState, feed: Feed, observers: readonly string[], wm: readonly WatermarkEntry[], msg: Message): void {
  for (const o of observers) send(s, o, msg)
  const own = wm[0]
  if (own !== undefined) { feed.sent = own.svw; feed.sentEpoch = own.epoch }
  feed.sentAt = s.now
}

/**
 * A voter's watermark gossip: to the observers of everything at every
 * publication, to a feed when it is owed the entry (a batch held here had
 * something for it that the entry last sent did not pass) or its heartbeat
 * is due; a coordinator's pending span goes with it.
 */
export function publishToObservers (s: PeerState, wm: readonly WatermarkEntry[]): void {
  const p = s.parts
  // Children in the tree get every voter's entry in a signed `tw` instead (tree.ts publishDown).
  toWholeObservers(s, { t: 'wm', wm }, s.options.signs)
  publishDown(s, () => checkpointsDown(s))
  if (p === undefined || p.observerParts.size === 0) return
  for (const { feed, observers } of feeds(s).values()) {
    // Owed when this entry passes what the feed waits for (one that does not yet would not let it evaluate); else at the
    // heartbeat. A pending span waits too: the observers need it only once they hear this voter's entry, which brings it.
    const svw = wm[0]?.svw
    // A new epoch's watermark starts from nothing: the feed hears this voter's first entry of it at once.
    const owed = (feed.sent <= feed.want && svw !== undefined && svw > feed.want) || (wm[0] !== undefined && wm[0].epoch !== feed.sentEpoch)
    if (!owed && s.now - feed.sentAt < FEED_HEARTBEATS * s.options.idleHeartbeatMs) continue
    tellEntry(s, feed, observers, wm)
  }
}

/** Sends the observers of everything a message meant for every observer this voter serves (tree.ts `serves`; with `skipChildren`, not those it passes `tw` down to). */
function toWholeObservers (s: PeerState, msg: Message, skipChildren = false): void {
  const projected = s.parts?.observerParts
  const down = skipChildren ? isDownTarget(s) : undefined
  const serves = servedBy(s)
  for (const o of s.observers.keys()) if (projected?.has(o) !== true && serves(o) && down?.(o) !== true) send(s, o, msg)
}

/** This voter's entry to a feed, with the pending span. */
function tellEntry (s: PeerState, feed: Feed, observers: readonly string[], wm: readonly WatermarkEntry[]): void {
  const span = feed.pending
  feed.pending = undefined
  tell(s, feed, observers, wm, { t: 'wm', wm, ...(span === undefined ? {} : { span }) })
}

/**
 * A strict read at an observer of some partitions waits for the watermark to
 * pass `ts` (no batch of its partitions may bring the voters' entries there
 * soon): this voter's entry goes to the observer's feed now, and again until
 * it passes `ts`.
 */
export function onWatermarkWanted (s: PeerState, from: string, ts: Timestamp, entries: (s: PeerState) => WatermarkEntry[]): void {
  // Not beyond the clock bound: a far-future `ts` would keep this voter owing the feed for good.
  if (roleOf(s) !== 'voter' || s.parts?.observerParts.has(from) !== true || timestampMs(ts) - s.now > s.options.maxSkewMs) return
  const mine = [...feeds(s).values()].find(f => f.observers.includes(from))
  if (mine === undefined) return
  mine.feed.want = maxTimestamp(mine.feed.want, ts)
  tellEntry(s, mine.feed, mine.observers, entries(s))
}

/**
 * An observer of some partitions learns which batches held nothing for it:
 * from their coordinator (`from`), or from a voter answering its gap request.
 * Those it does not hold pass without a batch.
 */
export function onSpan (s: PeerState, from: string, span: Span, gap: boolean, carried: readonly Batch[]): void {
  const record = s.epochs.get(span.epoch)
  const coordinator = span.coordinator ?? from
  // A gap answer's span covers at most the batches one request asks for.
  const trusted = gap ? (record?.voters.includes(from) === true || s.current.voters.includes(from)) && span.to - span.from < C.DEFAULT_GAP_BATCH : from === coordinator
  if ((projectedParts(s) === undefined && (record === undefined || storedSet(s, record) === undefined)) || record === undefined || !trusted) {
    count(s, 'span-refused')
    return
  }
  const stream = record.streams.get(coordinator)
  if (stream === undefined) return
  // What the message carried is not void, whether or not this replica took it (it may have refused it for now).
  const carries = new Set(carried.filter(b => b.coordinator === coordinator && b.epoch === span.epoch).map(b => b.seq))
  voidRange(record, stream, span.from, span.to, carries)
  kickEvaluator(s)
}

/**
 * The messages of a gap answer for an observer of some partitions: each
 * chunk of projections with the part of `span` up to its last batch (the last
 * one's up to the span's end), so no span covers a batch another message
 * carries, which may be lost or refused.
 */
export function spannedChunks (chunks: ReadonlyArray<readonly Batch[]>, span: Span | undefined): Array<{ batches: readonly Batch[], span?: Span }> {
  if (span === undefined) return chunks.map(batches => ({ batches }))
  const all = chunks.length === 0 ? [[]] : chunks
  let from = span.from
  return all.map((batches, i) => {
    const to = i === all.length - 1 ? span.to : (batches.at(-1) as Batch).seq
    const part = { ...span, from, to }
    from = to + 1
    return { batches, span: part }
  })
}

/**
 * A gap answer for a peer of `parts` (an observer of some partitions, or a
 * voter that stores replica set `set`'s parts): the projections, and a span
 * over the run of seqs from `from` this voter can speak for: those its store
 * had whole, or as a set's parts that cover `parts`, and those it knows held
 * nothing for such parts.
 */
export function projectGap (s: PeerState, batches: readonly Batch[], parts: ReadonlySet<number>, asked: { readonly coordinator: string, readonly epoch: number, readonly from: number }, set?: number): { batches: Batch[], span: Span | undefined } {
  const p = s.parts as PartState
  const within = (of: ReadonlySet<number> | undefined): boolean => of !== undefined && [...parts].every(q => of.has(q))
  const record = s.epochs.get(asked.epoch)
  // Seqs that held nothing for this voter's set, not evaluated long ago: nothing for `parts` either, when they are its set's.
  const mine = record === undefined ? undefined : storedParts(s, record)
  const voids = within(mine) ? record?.streams.get(asked.coordinator)?.voids : undefined
  const out: Batch[] = []
  let to = asked.from - 1
  const through = (upTo: number): void => { while (to + 1 < upTo && voids?.has(to + 1) === true) to++ }
  for (const b of batches) {
    // Another set's part cannot be cut down to `parts`: the run stops there.
    if (b.projected === true && !within(b.set === undefined ? undefined : p.placement.setParts[b.set])) continue
    through(b.seq)
    if (b.seq === to + 1) to = b.seq
    const proj = projectBatch(b, parts, p.spec, set)
    if (proj !== undefined) out.push(proj)
  }
  through(asked.from + C.DEFAULT_GAP_BATCH)
  return { batches: out, span: to >= asked.from ? { coordinator: asked.coordinator, epoch: asked.epoch, from: asked.from, to } : undefined }
}
