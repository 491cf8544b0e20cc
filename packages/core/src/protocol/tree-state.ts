/**
 * The dissemination tree's state (tree.ts): at every peer, the peers placed
 * under it; at an observer in the tree, its parent; at a voter, the
 * observers that hang under another peer (it sends them nothing but
 * answers).
 */

/** The tree's tunables (PeerInit `tree`). */
export interface TreeOptions {
  /** Whether this peer, as an observer of every partition, asks for a place in the tree. */
  readonly join: boolean
  /** Most children an observer serves. */
  readonly slots: number
  /** Most children a voter serves (the root's: each is one more copy of every batch leaving the voters). */
  readonly rootSlots: number
  /** Where other peers reach this one (libp2p multiaddrs), sent up so a parent can point newcomers at it. */
  readonly addresses: () => readonly string[]
}

export interface TreeChild {
  /** The size of the subtree it heads (itself included), as it last said. */
  size: number
  /** When it last said hello. */
  seen: number
  addrs: readonly string[]
}

export interface TreeState {
  /** This observer's parent, once it confirmed the place, whether it was a voter then, and when a new `tw` last came from it. */
  parent: { readonly id: string, heard: number, readonly voter: boolean } | undefined
  /** The peer this observer was pointed at and asked for a place, and when; the redirects followed since it last had a parent. */
  asking: { readonly id: string, readonly at: number } | undefined
  redirects: number
  readonly children: Map<string, TreeChild>
  /** At a voter: observers that hang under another peer, by that peer; and those in the tree with no place yet, since when. */
  readonly elsewhere: Map<string, string>
  readonly unplaced: Map<string, number>
  /**
   * At a voter: when it last sent its children a `tw`, and one with every
   * entry, and whether one with every entry is wanted (a new child); the
   * stamp of the last (it only rises); what it sent of each voter's entry, of
   * the durable reports and of the digest checkpoints.
   */
  lastTwAt: number
  lastFullAt: number
  wantFull: boolean
  twAt: number
  readonly sent: Map<string, string>
  sentDur: string
  sentCk: string
  /** At an observer: the stamp of the last `tw` it took of each voter (an older or equal one is a replay); its checks under way. */
  readonly lastTw: Map<string, number>
  checking: number
  /** Parents it left for silence, and until when it does not hang under them again. */
  readonly avoid: Map<string, number>
}

export function newTreeState (): TreeState {
  return { parent: undefined, asking: undefined, redirects: 0, children: new Map(), elsewhere: new Map(), unplaced: new Map(), lastTwAt: -Infinity, lastFullAt: -Infinity, wantFull: false, twAt: 0, sent: new Map(), sentDur: '', sentCk: '', lastTw: new Map(), checking: 0, avoid: new Map() }
}
