import { decode } from 'cborg'
import { InvalidCredentialError } from '@tideline/core'

/**
 * Signed group documents (genesis, invites) as bytes and text, without the
 * libp2p key code: what a Web Worker needs to read an invite (invite-reader.ts).
 */

export const GENESIS_DOMAIN = new TextEncoder().encode('tideline/genesis/v1\n')
export const INVITE_DOMAIN = new TextEncoder().encode('tideline/invite/v1\n')
/** Signed documents are small; anything bigger is refused before decoding. */
export const MAX_DOCUMENT_BYTES = 64 * 1024

const DECODE = { strict: true, allowIndefinite: false, allowUndefined: false, allowBigInt: false, rejectDuplicateMapKeys: true, useMaps: false } as const

/** Hex SHA-256: what names a genesis (its digest in invites) and an invite (in revocations). */
export async function sha256Hex (bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes)))
  return Array.from(d, b => b.toString(16).padStart(2, '0')).join('')
}

export function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}

export function decodeBody (body: Uint8Array, what: string): Record<string, unknown> {
  if (!(body instanceof Uint8Array) || body.byteLength > MAX_DOCUMENT_BYTES) throw new InvalidCredentialError(`${what} must be at most ${MAX_DOCUMENT_BYTES} bytes`)
  let v: unknown
  try {
    v = decode(body, DECODE)
  } catch (err) {
    throw new InvalidCredentialError(`${what} does not decode: ${(err as Error).message}`, { cause: err })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidCredentialError(`${what} must be a map`)
  return v as Record<string, unknown>
}

/** A signed document's text form (base64url of CBOR `{ body, sig }`) as bytes. */
/** A signed document (a genesis or an invite): its CBOR body and the signer's signature over its domain and body. */
export interface SignedDocument {
  readonly body: Uint8Array
  readonly sig: Uint8Array
}

export function decodeSigned (text: string): SignedDocument {
  if (typeof text !== 'string' || text.length > MAX_DOCUMENT_BYTES * 2) throw new InvalidCredentialError('signed document too long')
  let bin: string
  try {
    bin = atob(text.trim().replaceAll('-', '+').replaceAll('_', '/'))
  } catch (err) {
    throw new InvalidCredentialError('signed document is not base64url', { cause: err })
  }
  const bytes = Uint8Array.from(bin, c => c.charCodeAt(0))
  const v = decodeBody(bytes, 'signed document')
  if (!(v.body instanceof Uint8Array) || !(v.sig instanceof Uint8Array)) throw new InvalidCredentialError('signed document must be { body, sig } bytes')
  return { body: v.body, sig: v.sig }
}
