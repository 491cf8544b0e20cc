import { encode } from 'cborg'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { INVITE_EXPIRY_SKEW_MS, InvalidCredentialError, MEMBER_ROLES, checkPartitionSpec, roleAllows, strictPoint, strictSignature, type GroupConfig, type MemberRole, type PartitionSpec } from '@tideline/core'
import { GENESIS_DOMAIN, INVITE_DOMAIN, concat, decodeBody, sha256Hex } from './documents.js'
import { MAX_INVITE_NAME as MAX_NAME, inviteClaims } from './invite-reader.js'

/**
 * Who belongs to a group, proven by signatures rather than by a server.
 *
 * - The *genesis* configuration names the group, its creator and its voters
 *   (by peer id) and the procedure registry every member must run. The
 *   creator signs it; anyone holding it can check it against the creator's
 *   peer id (Ed25519 peer ids embed the public key).
 * - An *invite* admits one more peer: a voter of that genesis signs
 *   `{ group, genesis digest, peer?, expiry, role?, name? }`. Without `peer`
 *   it is a bearer invite any holder can use until it expires (what a demo
 *   page embeds); with `peer` only that peer id may use it. Its `role` says
 *   what its holder may do (MemberRole); `name` is a claim the issuer makes
 *   about the holder (a user name).
 *
 * Signed bytes are canonical CBOR (cborg sorts map keys), prefixed by a
 * domain string so a signature over one kind of document can never be
 * replayed as another.
 */

export interface Genesis {
  readonly v: 1
  readonly groupId: string
  /** Peer id of the key that signs this document. */
  readonly creator: string
  readonly voters: readonly string[]
  readonly registryHash: string
  readonly createdAt: number
  /** GroupConfig.txnRetentionMs (absent: the default, 24 h). */
  readonly txnRetentionMs?: number
  /** GroupConfig.txnSkewMs (absent: the default, 60 s). */
  readonly txnSkewMs?: number
  /** GroupConfig.signedCalls: every call carries its caller's signature, checked by every replica (absent: false). */
  readonly signedCalls?: boolean
  /** GroupConfig.partitions: how keys map to partitions, placed on the voters (absent: one partition). */
  readonly partitions?: PartitionSpec
}

/** A genesis as stored and sent: the signed CBOR bytes and the creator's signature over them. */
export interface SignedGenesis {
  readonly body: Uint8Array
  readonly sig: Uint8Array
}

// Roles are the core's (every replica checks a caller's role from its invite): re-exported here for hosts.
export { MEMBER_ROLES, roleAllows }
export type { MemberRole }

/** The role an invite grants (invites made before roles existed grant `writer`). */
export function inviteRole (invite: Invite): MemberRole {
  return invite.role ?? 'writer'
}

export interface Invite {
  readonly v: 1
  readonly groupId: string
  /** Digest of the genesis body the issuer vouches for. */
  readonly genesis: string
  /** The voter who signed. */
  readonly issuer: string
  /** Only this peer may use the invite; absent for a bearer invite. */
  readonly peer?: string
  /** Milliseconds since the epoch after which the invite is refused. */
  readonly expiresAt: number
  /** What its holder may do. @default 'writer' */
  readonly role?: MemberRole
  /** The issuer's claim of who the holder is (at most 64 characters). */
  readonly name?: string
}

export interface SignedInvite {
  readonly body: Uint8Array
  readonly sig: Uint8Array
}

async function sign (key: PrivateKey, domain: Uint8Array, body: Uint8Array): Promise<Uint8Array> {
  return key.sign(concat(domain, body))
}

async function verify (signer: string, domain: Uint8Array, body: Uint8Array, sig: Uint8Array): Promise<boolean> {
  let publicKey
  try {
    publicKey = peerIdFromString(signer).publicKey
  } catch (err) {
    throw new InvalidCredentialError(`signer ${signer} is not a peer id`, { cause: err })
  }
  if (publicKey === undefined) throw new InvalidCredentialError(`signer ${signer} does not embed a public key (use Ed25519 peer ids)`)
  // The strict checks every replica applies to the invites calls present (claims.ts), so a document taken here is one they take.
  if (publicKey.type !== 'Ed25519' || !strictPoint(publicKey.raw) || !strictSignature(sig)) return false
  try {
    return await publicKey.verify(concat(domain, body), sig)
  } catch {
    return false
  }
}

/** Digest naming one genesis body (hex SHA-256). */
export async function genesisDigest (body: Uint8Array): Promise<string> {
  return await sha256Hex(body)
}

/** What names an invite in a revocation (`{ kind: 'invite', id }`): the hex SHA-256 of its signed body. */
export async function inviteDigest (signed: SignedInvite): Promise<string> {
  return await sha256Hex(signed.body)
}

/** Creates and signs a group's genesis configuration; the signer is its creator. */
export async function createGenesis (creatorKey: PrivateKey, init: { groupId: string, voters: readonly string[], registryHash: string, createdAt?: number, txnRetentionMs?: number, txnSkewMs?: number, signedCalls?: boolean, partitions?: PartitionSpec }): Promise<SignedGenesis> {
  const genesis: Genesis = {
    v: 1,
    groupId: init.groupId,
    creator: peerIdFromPrivateKey(creatorKey).toString(),
    voters: [...init.voters],
    registryHash: init.registryHash,
    createdAt: init.createdAt ?? Date.now(),
    ...(init.txnRetentionMs === undefined ? {} : { txnRetentionMs: init.txnRetentionMs }),
    ...(init.txnSkewMs === undefined ? {} : { txnSkewMs: init.txnSkewMs }),
    ...(init.signedCalls === true ? { signedCalls: true } : {}),
    ...(init.partitions === undefined ? {} : { partitions: init.partitions })
  }
  checkGenesisShape({ ...genesis })
  const body = encode(genesis)
  return { body, sig: await sign(creatorKey, GENESIS_DOMAIN, body) }
}

function checkGenesisShape (g: Record<string, unknown>): asserts g is Genesis & Record<string, unknown> {
  if (g.v !== 1) throw new InvalidCredentialError('genesis: unknown version')
  if (typeof g.groupId !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(g.groupId)) throw new InvalidCredentialError('genesis: groupId must be 1-64 of [A-Za-z0-9._-]')
  if (!isPeerIdString(g.creator)) throw new InvalidCredentialError('genesis: creator must be a peer id')
  if (!Array.isArray(g.voters) || g.voters.length === 0 || g.voters.length > 64 || !g.voters.every(isPeerIdString)) throw new InvalidCredentialError('genesis: voters must be 1-64 peer ids')
  if (new Set(g.voters).size !== g.voters.length) throw new InvalidCredentialError('genesis: voters repeat')
  if (typeof g.registryHash !== 'string' || g.registryHash.length > 128) throw new InvalidCredentialError('genesis: registryHash must be a string')
  if (typeof g.createdAt !== 'number' || !Number.isSafeInteger(g.createdAt)) throw new InvalidCredentialError('genesis: createdAt must be an integer')
  for (const f of ['txnRetentionMs', 'txnSkewMs'] as const) {
    const v = g[f]
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)) throw new InvalidCredentialError(`genesis: ${f} must be a positive integer of milliseconds`)
  }
  if (g.signedCalls !== undefined && g.signedCalls !== true) throw new InvalidCredentialError('genesis: signedCalls must be true or absent')
  if (g.partitions !== undefined) {
    try {
      if (typeof g.partitions !== 'object' || g.partitions === null) throw new Error('must be an object')
      checkPartitionSpec(g.partitions as PartitionSpec)
    } catch (err) {
      throw new InvalidCredentialError(`genesis: partitions ${(err as Error).message}`)
    }
  }
}

/**
 * Checks a signed genesis and returns it decoded. With `creator`, it must
 * also be that peer's (what a joining peer that knows the group's address checks).
 */
export async function verifyGenesis (signed: SignedGenesis, creator?: string): Promise<Genesis> {
  const g = decodeBody(signed.body, 'genesis')
  checkGenesisShape(g)
  if (creator !== undefined && g.creator !== creator) throw new InvalidCredentialError(`genesis was created by ${g.creator}, not ${creator}`)
  if (!(signed.sig instanceof Uint8Array) || !await verify(g.creator, GENESIS_DOMAIN, signed.body, signed.sig)) throw new InvalidCredentialError('genesis: bad signature')
  return g
}

/** The protocol's view of a genesis (whose body digest is `digest`): epoch 0. */
export function configFromGenesis (g: Genesis, digest: string): GroupConfig {
  return {
    groupId: g.groupId,
    epoch: 0,
    voters: [...g.voters],
    registryHash: g.registryHash,
    genesis: { creator: g.creator, voters: [...g.voters], digest },
    ...(g.txnRetentionMs === undefined ? {} : { txnRetentionMs: g.txnRetentionMs }),
    ...(g.txnSkewMs === undefined ? {} : { txnSkewMs: g.txnSkewMs }),
    ...(g.signedCalls === true ? { signedCalls: true } : {}),
    ...(g.partitions === undefined ? {} : { partitions: g.partitions })
  }
}

/** A voter signs an invite to `genesis` (for `peer` only, or for any holder). */
export async function createInvite (voterKey: PrivateKey, signedGenesis: SignedGenesis, init: { peer?: string, expiresAt: number, role?: MemberRole, name?: string }): Promise<SignedInvite> {
  const g = await verifyGenesis(signedGenesis)
  const issuer = peerIdFromPrivateKey(voterKey).toString()
  if (!g.voters.includes(issuer)) throw new InvalidCredentialError(`only voters may invite; ${issuer} is not one`)
  if (init.role !== undefined && !MEMBER_ROLES.includes(init.role)) throw new InvalidCredentialError(`invite: role must be one of ${MEMBER_ROLES.join(', ')}`)
  if (init.name !== undefined && (init.name.length === 0 || init.name.length > MAX_NAME)) throw new InvalidCredentialError(`invite: name must be 1..${MAX_NAME} characters`)
  const invite: Invite = {
    v: 1,
    groupId: g.groupId,
    genesis: await genesisDigest(signedGenesis.body),
    issuer,
    ...(init.peer === undefined ? {} : { peer: init.peer }),
    expiresAt: init.expiresAt,
    ...(init.role === undefined ? {} : { role: init.role }),
    ...(init.name === undefined ? {} : { name: init.name })
  }
  const body = encode(invite)
  return { body, sig: await sign(voterKey, INVITE_DOMAIN, body) }
}

/**
 * Checks that `signed` admits `peer` to the group of `genesis` (whose body
 * digest is `digest`) at time `now`: signed by one of its voters, for this
 * group and genesis, for this peer (or any), not expired.
 */
export async function verifyInvite (signed: SignedInvite, genesis: Genesis, digest: string, peer: string, now: number): Promise<Invite> {
  const inv = decodeBody(signed.body, 'invite')
  const claims = inviteClaims(inv)
  if (typeof claims === 'string') throw new InvalidCredentialError(`invite: ${claims}`)
  if (claims.groupId !== genesis.groupId || claims.genesis !== digest) throw new InvalidCredentialError('invite: for another group')
  if (!genesis.voters.includes(claims.issuer)) throw new InvalidCredentialError('invite: issuer is not a voter')
  if (claims.peer !== undefined && claims.peer !== peer) throw new InvalidCredentialError('invite: issued to another peer')
  if (now > claims.expiresAt + INVITE_EXPIRY_SKEW_MS) throw new InvalidCredentialError('invite: expired')
  if (!(signed.sig instanceof Uint8Array) || !await verify(claims.issuer, INVITE_DOMAIN, signed.body, signed.sig)) throw new InvalidCredentialError('invite: bad signature')
  return inv as unknown as Invite
}

/** The group an invite is for, as it claims (unchecked: verifyInvite checks it against the group's genesis). */
export function inviteGroup (signed: SignedInvite): string {
  const claims = inviteClaims(decodeBody(signed.body, 'invite'))
  if (typeof claims === 'string') throw new InvalidCredentialError(`invite: ${claims}`)
  return claims.groupId
}

/** Text forms for files, flags and URLs: base64url of CBOR `{ body, sig }`. */
export function encodeSigned (s: SignedGenesis | SignedInvite): string {
  let bin = ''
  for (const b of encode({ body: s.body, sig: s.sig })) bin += String.fromCharCode(b)
  return btoa(bin).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function isPeerIdString (s: unknown): s is string {
  if (typeof s !== 'string' || s.length > 128) return false
  try {
    peerIdFromString(s)
    return true
  } catch {
    return false
  }
}

export { decodeSigned } from './documents.js'
