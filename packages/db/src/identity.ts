import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { Store } from '@tideline/core'

/** Most tabs of one app a browser profile runs at once, each with its own replica. */
export const MAX_SLOTS = 64
/** How long a reloaded tab waits for the slot it had (the old document releases it as it unloads). */
const RECLAIM_WAIT_MS = 3_000

export interface Slot {
  readonly index: number
  release(): void
}

interface LockManagerLike {
  request(name: string, options: { ifAvailable?: boolean, signal?: AbortSignal }, cb: (lock: unknown) => Promise<void> | void): Promise<unknown>
}

function locks (): LockManagerLike | undefined {
  return (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
}

/**
 * Claims a replica slot for this tab with the Web Locks API: slot `i` of
 * database `name` is held by at most one tab of the profile, for as long as
 * the tab lives. A reload asks first for the slot it had (remembered in
 * sessionStorage, which survives reloads but not new tabs), so it keeps its
 * identity and data; other tabs take the lowest free slot.
 */
export async function claimSlot (name: string): Promise<Slot> {
  const lm = locks()
  if (lm === undefined) throw new TypeError('this browser has no Web Locks API (navigator.locks); tabs cannot claim a replica safely')
  const remembered = `tideline:${name}:slot`
  const previous = Number(globalThis.sessionStorage?.getItem(remembered) ?? Number.NaN)
  const take = (i: number, wait: boolean): Promise<Slot | undefined> => new Promise<Slot | undefined>(resolve => {
    const options = wait ? { signal: AbortSignal.timeout(RECLAIM_WAIT_MS) } : { ifAvailable: true }
    lm.request(`tideline:${name}:slot:${i}`, options, async lock => {
      if (lock === null) { resolve(undefined); return }
      // The lock is held until this promise settles: until release() or the tab goes away.
      await new Promise<void>(release => { resolve({ index: i, release }) })
    }).catch(() => { resolve(undefined) })
  })
  let slot = Number.isInteger(previous) && previous >= 0 && previous < MAX_SLOTS ? await take(previous, true) : undefined
  for (let i = 0; slot === undefined && i < MAX_SLOTS; i++) slot = await take(i, false)
  if (slot === undefined) throw new RangeError(`every one of ${MAX_SLOTS} replica slots of ${name} is held by another tab`)
  globalThis.sessionStorage?.setItem(remembered, String(slot.index))
  return slot
}

/** This replica's libp2p identity, kept in its own store (created on first open). */
export async function loadIdentity (store: Store): Promise<PrivateKey> {
  const saved = await store.getMeta('identity')
  if (saved instanceof Uint8Array) return privateKeyFromProtobuf(saved)
  const key = await generateKeyPair('Ed25519')
  await store.write({ meta: [['identity', privateKeyToProtobuf(key)]], durability: 'strict' })
  return key
}
