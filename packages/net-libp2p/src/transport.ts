import { TopicValidatorResult } from '@libp2p/gossipsub'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Stream } from '@libp2p/interface'
import { InvalidMessageError, type Logger, type Message, type WatermarkEntry } from '@tideline/core'
import { MAX_FRAME_BYTES, decodeFrame, encodeMessages } from './codec.js'
import type { TidelineLibp2p } from './node.js'
import { queueTask } from './queue-task.js'

/**
 * Direct messages of one group: one long-lived stream per ordered pair of
 * peers, each frame a bundle of messages. A protocol id per group, so one
 * libp2p node can host many groups (a relay of many teams or documents).
 */
export function messageProtocol (groupId: string): string {
  return `/tideline/${groupId}/msg/13.0.0`
}

/** Watermark gossip for one group (gossipsub, signed by the author). */
export function watermarkTopic (groupId: string): string {
  return `/tideline/${groupId}/wm/1.0.0`
}

/** How often `drain` looks whether everything sent has been written. */
const DRAIN_POLL_MS = 5
/** Most messages one frame may carry. */
export const MAX_BUNDLE = 4096
/** Frames queued for one peer before the oldest are dropped (the protocol retransmits what matters). */
const MAX_QUEUED_FRAMES = 256
/** After a failed dial, frames for that peer are dropped for this long instead of redialling at once. */
const REDIAL_BACKOFF_MS = 250
const DIAL_TIMEOUT_MS = 5_000
/**
 * Least time between two watermark gossip publications. Direct messages carry
 * the watermark between peers that talk to each other; gossip is the slower
 * path for the rest, and each message costs a signature and its checks.
 */
const GOSSIP_PUBLISH_MS = 1_000
/** Junk frames from one peer before it is disconnected. */
const DEFAULT_MAX_JUNK = 16

export interface TransportInit {
  readonly node: TidelineLibp2p
  readonly groupId: string
  /** Whether `peerId` is a member of the group (voter or admitted observer). Others are refused. */
  readonly isMember: (peerId: string) => boolean
  /** Hands a decoded (not yet validated) message to the protocol; `from` is authenticated by Noise or the gossip signature. */
  readonly deliver: (from: string, message: unknown) => void
  readonly logger?: Logger
  /** @default 16 */
  readonly maxJunk?: number
  /**
   * Whether this peer follows watermark gossip. Replicas do; a client that only
   * submits and reads does not need it (and relays then need not forward it).
   * @default true
   */
  readonly gossip?: boolean
  /**
   * Whether the group revoked `peerId`: its submissions still reach the
   * protocol (and only they), which answers each with a named refusal
   * rather than leave it to time out. @default none is
   */
  readonly isRevoked?: (peerId: string) => boolean
}

/** A peer we send to: its stream, opened on first use, and what waits to be written. */
interface Link {
  stream: Stream | undefined
  lp: LengthPrefixedStream<Stream> | undefined
  queue: Uint8Array[]
  pumping: boolean
  /** No dial before this time (after a failed one). */
  quietUntil: number
}

/**
 * Carries core `Message`s between libp2p peers. Outgoing messages are
 * coalesced per destination per event-loop turn into one length-prefixed CBOR
 * frame on a long-lived stream; watermark messages (`wm`) also go over
 * gossipsub, at most every GOSSIP_PUBLISH_MS. Incoming frames are decoded and handed over with
 * the authenticated sender; anything undecodable is dropped and counted, and
 * a peer that keeps sending it is disconnected. Nothing a peer sends throws.
 */
export class MessageTransport {
  readonly counters: Record<string, number> = {}
  private readonly node: TidelineLibp2p
  private readonly init: TransportInit
  private readonly topic: string
  private readonly protocol: string
  private readonly links = new Map<string, Link>()
  private readonly outgoing = new Map<string, Message[]>()
  private readonly junk = new Map<string, number>()
  private readonly inbound = new Set<Stream>()
  private pendingGossip: Message | undefined
  /** The entries of the last watermark published by gossip (entriesKey). */
  private lastGossipKey: string | undefined
  private lastGossipPublish = -Infinity
  private flushScheduled = false
  private stopped = false

  constructor (init: TransportInit) {
    this.init = init
    this.node = init.node
    this.topic = watermarkTopic(init.groupId)
    this.protocol = messageProtocol(init.groupId)
  }

  async start (): Promise<void> {
    await this.node.handle(this.protocol, (stream, connection) => { this.accept(stream, connection) }, { maxInboundStreams: 4, maxOutboundStreams: 4 })
    // Gossip authored by a non-member is neither delivered nor forwarded (and costs its relayer score).
    this.node.services.pubsub.topicValidators.set(this.topic, (_relayer, m) => {
      if (m.type === 'signed' && this.init.isMember(m.from.toString())) return TopicValidatorResult.Accept
      this.count('gossip-non-member-dropped')
      return TopicValidatorResult.Reject
    })
    if (this.init.gossip ?? true) this.node.services.pubsub.subscribe(this.topic)
    this.node.services.pubsub.addEventListener('message', this.onGossip)
  }

  /**
   * Waits (at most `timeoutMs`) until what was sent has been written to its
   * streams: nothing queued for this turn, no frame waiting on a link. Before
   * `stop`, so a peer that closes right after an epoch change it led (a voter
   * handing over) still delivers the decision: with two voters the other one
   * could not finish it alone.
   */
  async drain (timeoutMs: number): Promise<void> {
    const end = performance.now() + timeoutMs
    const busy = (): boolean => this.flushScheduled || this.outgoing.size > 0 || [...this.links.values()].some(l => l.pumping || l.queue.length > 0)
    while (!this.stopped && busy() && performance.now() < end) await new Promise(resolve => setTimeout(resolve, DRAIN_POLL_MS))
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.node.services.pubsub.removeEventListener('message', this.onGossip)
    this.node.services.pubsub.topicValidators.delete(this.topic)
    if (this.init.gossip ?? true) this.node.services.pubsub.unsubscribe(this.topic)
    await this.node.unhandle(this.protocol)
    for (const link of this.links.values()) link.stream?.abort(new Error('transport stopped'))
    for (const s of this.inbound) s.abort(new Error('transport stopped'))
    this.links.clear()
  }

  /** Raises a counter (the transport's own, and those of the services that share it). */
  count (name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n
  }

  private log (event: string, detail: Record<string, unknown>): void {
    this.init.logger?.(event, detail)
  }

  /** Queues `message` for `to`; sent at the end of this turn with everything else for `to`. */
  send (to: string, message: Message): void {
    if (this.stopped) return
    // Watermarks go straight to the peers the core names (cheap: Noise already
    // authenticates the sender), and at most every GOSSIP_PUBLISH_MS over signed
    // gossip, for members that reach some voter only through others; but not a
    // quiet voter's repeat of the entry it gossiped last (a signature and its
    // checks on every relay, every 20 s, for every idle group: quiesce.ts).
    if (message.t === 'wm' && !(message.quiet === true && entriesKey(message.wm) === this.lastGossipKey)) this.pendingGossip = message
    let batch = this.outgoing.get(to)
    if (batch === undefined) {
      batch = []
      this.outgoing.set(to, batch)
    }
    batch.push(message)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueTask(this.flush)
    }
  }

  /**
   * Enqueues `messages` as one frame, or as several when together they
   * encode to more than a peer accepts (several large submissions in one
   * turn, or a `write` or `gap-rep` of several large batches, which is sent
   * as several, a batch each at most); a single message still too large is
   * dropped and counted (`oversize-dropped`): the receiver would refuse the
   * frame, and with it every message bundled beside it.
   */
  private enqueueBounded (to: string, messages: readonly Message[]): void {
    const frame = encodeMessages(messages)
    if (frame.byteLength <= MAX_FRAME_BYTES) {
      this.enqueue(to, frame)
      return
    }
    const only = messages[0] as Message
    if (messages.length === 1 && (only.t === 'write' || only.t === 'gap-rep') && only.batches.length > 1) {
      const half = Math.ceil(only.batches.length / 2)
      this.enqueueBounded(to, [{ ...only, batches: only.batches.slice(0, half) }])
      this.enqueueBounded(to, [{ ...only, batches: only.batches.slice(half) }])
      return
    }
    if (messages.length === 1) {
      this.count('oversize-dropped')
      this.log('oversize-dropped', { to, type: (messages[0] as Message).t, bytes: frame.byteLength })
      return
    }
    const half = Math.ceil(messages.length / 2)
    this.enqueueBounded(to, messages.slice(0, half))
    this.enqueueBounded(to, messages.slice(half))
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    if (this.stopped) return
    for (const [to, batch] of this.outgoing) {
      this.count('messages-out', batch.length)
      // By type too (`out-write`, `out-tw`, …): what a relay's outgoing messages are made of.
      for (const m of batch) this.count(`out-${m.t}`)
      // A snapshot chunk (up to about 3 MiB) travels in a frame of its own, so no bundle outgrows MAX_FRAME_BYTES.
      const chunks = batch.filter(m => m.t === 'snap-chunk')
      const rest = chunks.length === 0 ? batch : batch.filter(m => m.t !== 'snap-chunk')
      for (const c of chunks) this.enqueueBounded(to, [c])
      for (let i = 0; i < rest.length; i += MAX_BUNDLE) this.enqueueBounded(to, rest.slice(i, i + MAX_BUNDLE))
    }
    this.outgoing.clear()
    const gossip = this.pendingGossip
    const now = performance.now()
    if (gossip !== undefined && now - this.lastGossipPublish >= GOSSIP_PUBLISH_MS) {
      this.pendingGossip = undefined
      this.lastGossipPublish = now
      this.lastGossipKey = gossip.t === 'wm' ? entriesKey(gossip.wm) : undefined
      const data = encodeMessages([gossip])
      this.count('gossip-bytes-out', data.length)
      this.node.services.pubsub.publish(this.topic, data).then(
        () => { this.count('gossip-out') },
        (err: unknown) => { this.count('gossip-out-failed'); this.log('gossip-failed', { error: (err as Error).message }) })
    }
  }

  private enqueue (to: string, frame: Uint8Array): void {
    let link = this.links.get(to)
    if (link === undefined) {
      link = { stream: undefined, lp: undefined, queue: [], pumping: false, quietUntil: 0 }
      this.links.set(to, link)
    }
    if (link.lp === undefined && performance.now() < link.quietUntil) {
      this.count('frames-dropped-unreachable')
      return
    }
    if (link.queue.length >= MAX_QUEUED_FRAMES) {
      link.queue.shift()
      this.count('frames-dropped-backlog')
    }
    link.queue.push(frame)
    if (!link.pumping) void this.pump(to, link)
  }

  /** Writes a link's queue in order, opening its stream first if needed; a failure drops the queue. */
  private async pump (to: string, link: Link): Promise<void> {
    link.pumping = true
    try {
      while (link.queue.length > 0 && !this.stopped) {
        if (link.lp === undefined) await this.open(to, link)
        const frames = link.queue
        link.queue = []
        await (link.lp as LengthPrefixedStream<Stream>).writeV(frames)
        this.count('frames-out', frames.length)
        this.count('bytes-out', frames.reduce((n, f) => n + f.length, 0))
      }
    } catch (err) {
      this.count('frames-dropped-send-failed', link.queue.length + 1)
      this.log('send-failed', { to, error: (err as Error).message })
      link.stream?.abort(err as Error)
      link.stream = undefined
      link.lp = undefined
      link.queue = []
      link.quietUntil = performance.now() + REDIAL_BACKOFF_MS
    } finally {
      link.pumping = false
    }
  }

  private async open (to: string, link: Link): Promise<void> {
    const stream = await this.node.dialProtocol(peerIdFromString(to), this.protocol, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    link.stream = stream
    link.lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    stream.addEventListener('close', () => {
      if (link.stream !== stream) return
      link.stream = undefined
      link.lp = undefined
    })
    this.count('streams-opened')
  }

  /**
   * An inbound stream; then frames until it ends. A peer this one does not
   * know as a member yet (one that joined the group after this peer's epoch)
   * is heard only for decisions that carry a proof: the proof, not the
   * sender, is what the protocol checks, and those decisions are how this
   * peer learns who the members are now.
   */
  private accept (stream: Stream, connection: Connection): void {
    const from = connection.remotePeer.toString()
    this.inbound.add(stream)
    void this.readLoop(stream, from).finally(() => { this.inbound.delete(stream) })
  }

  private async readLoop (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    // Asked until the peer is a member, then taken for the stream's life (as a member's stream always was).
    let member = false
    try {
      for (;;) {
        const frame = await lp.read()
        this.count('frames-in')
        this.count('bytes-in', frame.byteLength)
        member ||= this.init.isMember(from)
        this.onFrame(from, frame.subarray(), member)
        if (this.stopped) return
      }
    } catch (err) {
      const name = (err as Error).name
      // A clean end or a reset is how streams finish; an oversize length prefix is junk.
      if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') this.onJunk(from, err as Error)
      stream.abort(err as Error)
    }
  }

  private onFrame (from: string, frame: Uint8Array, member: boolean): void {
    let messages: unknown
    try {
      messages = decodeFrame(frame)
      if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_BUNDLE) throw new InvalidMessageError(`a frame must be a bundle of 1..${MAX_BUNDLE} messages`)
    } catch (err) {
      this.onJunk(from, err as Error)
      return
    }
    let refused = 0
    let revoked: boolean | undefined
    for (const m of messages) {
      if (member || isProvedDecision(m)) this.init.deliver(from, m)
      else if (isSubmission(m) && (revoked ??= this.init.isRevoked?.(from) === true)) this.init.deliver(from, m)
      else refused++
    }
    if (refused > 0) {
      this.count('refused-non-member', refused)
      this.log('refused-non-member', { from, messages: refused })
    }
  }

  private readonly onGossip = (event: CustomEvent<{ type: string, topic: string, data: Uint8Array, from?: { toString(): string } }>): void => {
    const m = event.detail
    if (m.topic !== this.topic) return
    // StrictSign: gossipsub checked the signature, so `from` is the author, whoever relayed it.
    if (m.type !== 'signed' || m.from === undefined) {
      this.count('gossip-unsigned-dropped')
      return
    }
    const from = m.from.toString()
    if (!this.init.isMember(from)) {
      this.count('gossip-non-member-dropped')
      return
    }
    this.count('gossip-in')
    let messages: unknown
    try {
      messages = decodeFrame(m.data)
      if (!Array.isArray(messages) || messages.length !== 1) throw new InvalidMessageError('a gossip message must be a bundle of one')
    } catch (err) {
      this.onJunk(from, err as Error)
      return
    }
    const [msg] = messages as unknown[]
    if (typeof msg !== 'object' || msg === null || (msg as { t?: unknown }).t !== 'wm') {
      this.onJunk(from, new InvalidMessageError('only watermark messages travel by gossip'))
      return
    }
    this.init.deliver(from, msg)
  }

  private onJunk (from: string, err: Error): void {
    this.count('junk')
    const n = (this.junk.get(from) ?? 0) + 1
    this.junk.set(from, n)
    this.log('junk', { from, n, error: err.message })
    if (n >= (this.init.maxJunk ?? DEFAULT_MAX_JUNK)) {
      this.junk.delete(from)
      this.count('disconnected-for-junk')
      this.log('disconnect-junk', { from })
      this.node.hangUp(peerIdFromString(from)).catch(() => {})
    }
  }
}

/** Watermark entries as a string: equal for the same entries. */
function entriesKey (wm: readonly WatermarkEntry[]): string {
  return wm.map(e => `${e.voter} ${e.epoch} ${e.svw} ${e.count}`).join('|')
}

/** A submission: a revoked peer's is answered with its refusal (core's dispatch). */
function isSubmission (m: unknown): boolean {
  const d = m as { t?: unknown } | null
  return typeof d === 'object' && d !== null && d.t === 'submit'
}

/** A decision a non-member may pass on: it carries the signatures the protocol checks (core's onDecided). */
function isProvedDecision (m: unknown): boolean {
  const d = m as { t?: unknown, proof?: unknown } | null
  return typeof d === 'object' && d !== null && d.t === 'rc-decided' && typeof d.proof === 'object' && d.proof !== null
}
