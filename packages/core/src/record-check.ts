import { Hasher } from './hash.js'
import { toHex } from './value.js'

/**
 * The check a store keeps with a record it holds as structured data (an
 * IndexedDB object): a 32-bit hash of where the record belongs (`where`: its
 * object store and key) and of its content, walked as `canonical` walks a
 * value. A bit flip, a torn record or one written in another record's place
 * fails it. Stores of bytes check the bytes themselves (LevelStore: CRC-32 of
 * key and value).
 */
export function recordCheck (where: string, content: unknown): number {
  const h = new Hasher().text(where)
  feed(h, content, 0)
  return parseInt(h.digest().slice(0, 8), 16)
}

/**
 * Feeds a stored record's content to the hasher, piece by piece (no text of
 * the whole record is built): like `canonical`, but it takes whatever a
 * store holds, `undefined` included (an optional field left unset), and
 * never throws on it: a check must not refuse a record the store accepted.
 */
function feed (h: Hasher, v: unknown, depth: number): void {
  if (depth > 256) { h.text('…'); return }
  if (v === null) { h.text('n'); return }
  switch (typeof v) {
    case 'undefined': h.text('u'); return
    case 'string': h.text('s').text(v); return
    case 'number': h.text(Object.is(v, -0) ? '-0' : String(v)); return
    case 'boolean': h.text(v ? 't' : 'f'); return
    case 'bigint': h.text(`${v}n`); return
    case 'object':
      if (v instanceof Uint8Array) { h.text('b').text(toHex(v)); return }
      if (Array.isArray(v)) {
        h.text(`[${v.length}`)
        for (const x of v) feed(h, x, depth + 1)
        return
      }
      {
        const keys = Object.keys(v).sort()
        h.text(`{${keys.length}`)
        for (const k of keys) { h.text(k); feed(h, (v as Record<string, unknown>)[k], depth + 1) }
      }
      return
    default: h.text(typeof v)
  }
}

/** What a test or the simulator damages in a store. */
export type DamageTarget =
  | { readonly batch: { readonly coordinator: string, readonly epoch: number, readonly seq: number } }
  | { readonly value: string }
  | { readonly record: string }
  | { readonly meta: string }

/**
 * How a record is damaged: `bit-flip` changes a byte of it, `torn` cuts it
 * short (a write that did not reach the disk whole), `misdirected` puts
 * another record's bytes in its place (a write that landed at the wrong
 * address).
 */
export type DamageKind = 'bit-flip' | 'torn' | 'misdirected'

export const DAMAGE_KINDS: readonly DamageKind[] = ['bit-flip', 'torn', 'misdirected']

/** A target as one string (`b|coordinator|epoch|seq`, `v|key`, `x|id`, `m|name`), for stores that keep a set of damaged records. */
export function damageId (t: DamageTarget): string {
  if ('batch' in t) return `b|${t.batch.coordinator}|${t.batch.epoch}|${t.batch.seq}`
  if ('value' in t) return `v|${t.value}`
  if ('record' in t) return `x|${t.record}`
  return `m|${t.meta}`
}
