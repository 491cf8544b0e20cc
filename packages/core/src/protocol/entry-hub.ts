import { ENTRY_HUB_MIN_VOTERS } from '../constants.js'
import type { WatermarkEntry } from '../types.js'
import { count, send } from './emit.js'
import { suspects } from './reconfig/failure-detector.js'
import type { PeerState } from './state.js'

/**
 * The entry hub. A busy voter publishes its watermark entry every gossip
 * interval (20 ms); sent to every voter, that is n - 1 messages out and
 * n - 1 in per voter per interval, which in a group of six is most of what a
 * relay does at a moderate load (docs/bench/partitions.md). So in groups of
 * at least ENTRY_HUB_MIN_VOTERS, a busy voter sends its entry to one voter,
 * the hub, which relays every entry raised since its last publication to
 * every voter in one message (`wmr`): about 2 messages per voter per
 * interval, and 2(n - 1) at the hub. Every voter still sends its own entry to
 * every voter itself at least once a heartbeat (`idleHeartbeatMs`), on its
 * batches, and whenever it is quiet, so the failure detector hears each
 * voter directly, and a dead hub only slows the watermark to that pace until
 * it is suspected and the next voter takes over.
 *
 * The hub is the first voter of the epoch this voter does not suspect. Two
 * voters that disagree on it each relay what reaches them; an entry raised
 * at a hub is relayed once. Voters are trusted with each other's entries
 * (the protocol tolerates crashes, not lies): an entry relayed is still its
 * voter's promise, merged by max, so relaying can delay the watermark but
 * never move it past a promise. Only voters of the epoch relay.
 */

/** The voter this one sends its busy entries to (itself when it is the hub), or undefined: every entry goes to every voter. */
export function entryHub (s: PeerState): string | undefined {
  const voters = s.current.voters
  if (!s.options.entryHub || voters.length < ENTRY_HUB_MIN_VOTERS || !voters.includes(s.id)) return undefined
  return voters.find(v => v === s.id || !suspects(s, v, s.now))
}

/** At the hub's publication: the other voters' entries raised since the last one, to every voter. */
export function relayEntries (s: PeerState): void {
  const fresh = s.current.wm.takeFresh(s.id)
  if (fresh.length === 0) return
  count(s, 'entries-relayed', fresh.length)
  const msg = { t: 'wmr', wm: fresh } as const
  for (const v of s.current.voters) send(s, v, msg)
}

/** Entries a voter of this epoch relayed: of other voters of it, and of this epoch only (a newer one comes from its voter directly). */
export function relayedEntries (s: PeerState, from: string, entries: readonly WatermarkEntry[]): WatermarkEntry[] | undefined {
  if (!s.current.voters.includes(from)) {
    count(s, 'wmr-refused')
    return undefined
  }
  return entries.filter(e => e.voter !== s.id && e.voter !== from && e.epoch === s.current.epoch && s.current.voters.includes(e.voter))
}
