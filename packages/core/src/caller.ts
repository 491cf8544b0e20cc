import type { DecisionSigner } from './protocol/reconfig/proof.js'
import type { CallerSig, SubmitRequest, Thunk } from './types.js'
import type { CallerVerdict, InviteReader, ReadInvite } from './claims.js'
import { canonical, fromHex, toHex } from './value.js'

/**
 * Signed calls (issue 27, `docs/design/permissions.md`). A caller signs what
 * it asks for; every replica checks the signature before it runs the call,
 * so a coordinator or another member cannot make a call in its name, and
 * every replica reaches the same verdict. Ed25519 implementations disagree
 * on some crafted signatures (non-canonical encodings, points of small
 * order, the cofactor), so every replica first applies the same strict
 * checks here, then the platform's RFC 8032 (cofactorless) verification.
 */

const DOMAIN = 'tideline/call/1'
const encoder = new TextEncoder()

/** What a caller signs: its call, in group `groupId`, and the invite it presents with it (so no one can lend it another). */
export function callStatement (groupId: string, req: { readonly clientTxnId: string, readonly procedure: string, readonly hash: string, readonly args: unknown, readonly firstAt: number }, invite?: string): Uint8Array {
  return encoder.encode(canonical({ domain: DOMAIN, group: groupId, clientTxnId: req.clientTxnId, procedure: req.procedure, hash: req.hash, args: req.args as never, firstAt: req.firstAt, ...(invite === undefined ? {} : { invite }) }))
}

/** Signs `req` as peer `id`, presenting `invite` (it must be dated: the date is part of what is signed, and every retry carries it). */
export async function signCall (groupId: string, id: string, signer: Pick<DecisionSigner, 'sign'>, req: SubmitRequest & { readonly firstAt: number }, invite?: string): Promise<SubmitRequest & { readonly firstAt: number, readonly caller: CallerSig }> {
  const sig = await signer.sign(callStatement(groupId, req, invite))
  return { ...req, caller: { id, sig: toHex(sig), ...(invite === undefined ? {} : { invite }) } }
}

const P = (1n << 255n) - 19n
const L = (1n << 252n) + 27742317777372353535851937790883648493n

function littleEndian (bytes: Uint8Array, from: number, to: number): bigint {
  let n = 0n
  for (let i = to - 1; i >= from; i--) n = (n << 8n) | BigInt(bytes[i] as number)
  return n
}

/** The canonical encodings of the eight points of small order (the identity among them). */
const SMALL_ORDER = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa'
])

/** Whether 32 bytes are a canonical point encoding (y below p) of a point not of small order. */
export function strictPoint (bytes: Uint8Array): boolean {
  if (bytes.byteLength !== 32) return false
  const top = bytes[31] as number
  const y = littleEndian(Uint8Array.of(...bytes.subarray(0, 31), top & 0x7f), 0, 32)
  if (y >= P) return false
  // x = 0 (y = 1 or y = -1) has one encoding only: with the sign bit clear.
  if ((top & 0x80) !== 0 && (y === 1n || y === P - 1n)) return false
  return !SMALL_ORDER.has(toHex(bytes))
}

/** Whether a 64-byte signature passes the strict checks: R strict, S below the group order. */
export function strictSignature (sig: Uint8Array): boolean {
  return sig.byteLength === 64 && strictPoint(sig.subarray(0, 32)) && littleEndian(sig, 32, 64) < L
}

/** A replica's verdict on a thunk's caller: a check every replica makes the same way. */
export type CallVerifier = (peer: string, statement: Uint8Array, sig: Uint8Array) => boolean | Promise<boolean>

type Maybe<T> = T | Promise<T>
const then = <T, U>(v: Maybe<T>, f: (x: T) => Maybe<U>): Maybe<U> => v instanceof Promise ? v.then(f) : f(v)

/** Most invites whose verdict an applier remembers (a verdict depends on the invite's text alone). */
const INVITE_VERDICTS = 1024

/**
 * Checks the caller of every thunk of `run` that has one (strict checks,
 * then `verify`, which must check the peer's key strictly too), and the
 * invite it brought (read by `readInvite`, its issuer's signature checked
 * the same way; `invites` remembers verdicts by text): index → verdict.
 * Synchronous when `verify` and `readInvite` are. A verifier that throws
 * cannot decide, which is not a verdict: the error propagates and the
 * replica fails rather than diverge.
 */
export function callerVerdicts (groupId: string, run: readonly Thunk[], verify: CallVerifier, readInvite?: InviteReader, invites: Map<string, Maybe<ReadInvite | null>> = new Map()): Maybe<Map<number, CallerVerdict>> {
  const signed = (peer: string, statement: Uint8Array, sig: Uint8Array): Maybe<boolean> => strictSignature(sig) ? verify(peer, statement, sig) : false
  const inviteVerdict = (text: string): Maybe<ReadInvite | null> => {
    let v = invites.get(text)
    if (v === undefined) {
      v = readInvite === undefined ? null : then(readInvite(text), r => r === undefined ? null : then(signed(r.claims.issuer, r.statement, r.sig), ok => ok ? r : null))
      if (invites.size >= INVITE_VERDICTS) invites.clear()
      invites.set(text, v)
    }
    return v
  }
  const out = new Map<number, Maybe<CallerVerdict>>()
  run.forEach((t, i) => {
    const c = t.caller
    if (c === undefined) return
    const sig = signed(c.id, callStatement(groupId, t, c.invite), fromHex(c.sig))
    out.set(i, c.invite === undefined ? then(sig, ok => ({ sig: ok })) : then(sig, ok => then(inviteVerdict(c.invite as string), invite => ({ sig: ok, invite }))))
  })
  if ([...out.values()].every(v => !(v instanceof Promise))) return out as Map<number, CallerVerdict>
  return Promise.all([...out].map(async ([i, v]) => [i, await v] as const)).then(pairs => new Map(pairs))
}
