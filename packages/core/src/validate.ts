import { InvalidMessageError } from './errors.js'
import { arr, fail, int, keyRange, keys, MAX_KEY, obj, rangeRead, signature, str, ts } from './validate-basics.js'
import type { Message } from './messages.js'
import { isTimestamp } from './timestamp.js'
import { checkValue } from './value.js'
import { SNAPSHOT_CHUNK_BYTES } from './constants.js'
import { feedFields, holdingField, partitionMessage, partsField, treeFields, wm } from './validate-parts.js'

/** Upper bounds on what a peer accepts in one message. */
export interface MessageLimits {
  /** @default 4096 */
  readonly maxThunks?: number
  /** @default 1024 */
  readonly maxKeys?: number
  /** @default 1 MiB */
  readonly maxValueBytes?: number
}

function thunk (x: unknown, limits: Required<MessageLimits>): Record<string, unknown> {
  const t = obj(x, 'thunk')
  ts(t.ts, 'thunk.ts')
  int(t.epoch, 'thunk.epoch')
  str(t.coordinator, 'thunk.coordinator')
  int(t.seq, 'thunk.seq', 1)
  int(t.index, 'thunk.index')
  str(t.procedure, 'thunk.procedure')
  str(t.hash, 'thunk.hash')
  str(t.clientTxnId, 'thunk.clientTxnId')
  int(t.firstAt, 'thunk.firstAt')
  if (t.caller !== undefined) caller(t.caller, 'thunk.caller')
  keys(t.reads, 'thunk.reads', limits.maxKeys)
  keys(t.writes, 'thunk.writes', limits.maxKeys)
  if (t.ranges !== undefined) for (const r of arr(t.ranges, 'thunk.ranges', limits.maxKeys)) keyRange(r, 'thunk.ranges[]')
  try {
    checkValue(t.args, limits.maxValueBytes)
  } catch (err) {
    fail(`thunk.args: ${(err as Error).message}`)
  }
  return t
}

/** Batches of at most `maxThunks` thunks in all, each non-empty; thunks carry its epoch, coordinator and seq, numbered from 0 (a projection's ascend with gaps), ascending in timestamp. */
function batches (x: unknown, what: string, maxBatches: number, maxThunks: number, limits: Required<MessageLimits>): void {
  let total = 0
  for (const item of arr(x, what, maxBatches)) {
    const b = obj(item, 'batch')
    const epoch = int(b.epoch, 'batch.epoch')
    const coordinator = str(b.coordinator, 'batch.coordinator')
    const seq = int(b.seq, 'batch.seq', 1)
    const list = arr(b.thunks, 'batch.thunks', maxThunks)
    if (list.length === 0) fail('batch.thunks must not be empty')
    total += list.length
    if (total > maxThunks) fail(`${what} hold more than ${maxThunks} thunks`)
    if (b.projected !== undefined && b.projected !== true) fail('batch.projected must be true when present')
    if (b.n !== undefined && (b.projected !== true || int(b.n, 'batch.n', 1) < list.length || (b.n as number) > limits.maxThunks)) fail(`batch.n is a projection's whole thunk count (at most ${limits.maxThunks})`)
    if (b.set !== undefined && (b.projected !== true || int(b.set, 'batch.set') >= 256)) fail('batch.set is a projection\'s replica set')
    if (b.sig !== undefined) signature(b.sig, 'batch.sig')
    if (b.projected === true && b.sig !== undefined && b.digests === undefined) fail('a projection of a signed batch carries its digests')
    if (b.digests !== undefined) {
      if (b.projected !== true || b.sig === undefined) fail('batch.digests belong to a projection of a signed batch')
      const ds = arr(b.digests, 'batch.digests', (b.n as number | undefined) ?? list.length)
      if (ds.length !== (b.n ?? list.length) || !ds.every(d => d === '' || (typeof d === 'string' && /^[0-9a-f]{64}$/.test(d)))) fail('batch.digests must hold, for each of the batch\'s n thunks, a SHA-256 in hex or \'\'')
    }
    let previous = ''
    let last = -1
    for (let i = 0; i < list.length; i++) {
      const t = thunk(list[i], limits)
      // A projection keeps the full batch's indices: they ascend with gaps.
      const index = b.projected === true ? (t.index as number) > last : t.index === i
      last = t.index as number
      if (t.epoch !== epoch || t.coordinator !== coordinator || t.seq !== seq || !index) fail('a thunk does not match its batch (epoch, coordinator, seq, index)')
      if ((t.ts as string) <= previous) fail('batch.thunks must ascend in timestamp')
      previous = t.ts as string
    }
    if (b.n !== undefined && last >= (b.n as number)) fail('a projection\'s thunk index must be below batch.n')
  }
}

/** Most thunks an epoch change (or a promise's report) may carry (kept batches not yet on every replica). */
const MAX_RC_THUNKS = 16_384

function ballot (x: unknown): void {
  const b = obj(x, 'ballot')
  int(b.n, 'ballot.n', 1)
  str(b.by, 'ballot.by')
}

function epochChange (x: unknown, limits: Required<MessageLimits>): void {
  const v = obj(x, 'epoch change')
  int(v.epoch, 'value.epoch', 1)
  const voters = arr(v.voters, 'value.voters', 64)
  if (voters.length === 0) fail('value.voters must not be empty')
  for (const id of voters) str(id, 'value.voters')
  if (new Set(voters).size !== voters.length) fail('value.voters has duplicates')
  for (const c of arr(v.cuts, 'value.cuts', 64)) {
    const cut = obj(c, 'cut')
    str(cut.coordinator, 'cut.coordinator')
    const end = int(cut.end, 'cut.end')
    for (const s of arr(cut.skip, 'cut.skip', MAX_RC_THUNKS)) if (int(s, 'cut.skip seq', 1) > end) fail('cut.skip beyond cut.end')
  }
  ts(v.floor, 'value.floor')
  batches(v.batches, 'value.batches', MAX_RC_THUNKS, MAX_RC_THUNKS, limits)
  if (v.revoked !== undefined) {
    for (const r of arr(v.revoked, 'value.revoked', MAX_REVOKED)) ts(revocation(r, 'value.revoked entry', 3).from, 'value.revoked.from')
  }
}

/** Most revocations a group's configuration holds. */
export const MAX_REVOKED = 4096

/** A revocation: a peer id, or an invite's hex SHA-256. */
function revocation (x: unknown, what: string, fields = 2): Record<string, unknown> {
  const r = obj(x, what)
  if (Object.keys(r).length !== fields) fail(`${what} must hold exactly ${fields === 2 ? 'kind and id' : 'kind, id and from'}`)
  if (r.kind !== 'peer' && r.kind !== 'invite') fail(`${what}.kind must be 'peer' or 'invite'`)
  const id = str(r.id, `${what}.id`)
  if (r.kind === 'invite' && !/^[0-9a-f]{64}$/.test(id)) fail(`${what}.id must be an invite's hex SHA-256 (64 lowercase hex digits)`)
  return r
}

function caller (x: unknown, what: string): void {
  const c = obj(x, what)
  str(c.id, `${what}.id`)
  signature(c.sig, `${what}.sig`)
  if ('invite' in c) str(c.invite, `${what}.invite`, MAX_INVITE_TEXT)
}

/** An invite's text form is a few hundred characters; anything far longer is not one. */
const MAX_INVITE_TEXT = 4096

function proof (x: unknown): void {
  const p = obj(x, 'proof')
  ballot(p.ballot)
  for (const item of arr(p.sigs, 'proof.sigs', 64)) {
    const e = obj(item, 'proof.sigs entry')
    str(e.voter, 'proof.sigs.voter')
    signature(e.sig, 'proof.sigs.sig')
  }
}


/** Most items in one snapshot chunk. */
const MAX_CHUNK_ITEMS = 65_536

function cursor (x: unknown): void {
  const c = obj(x, 'cursor')
  ts(c.frontier, 'cursor.frontier')
  ts(c.last, 'cursor.last')
  int(c.count, 'cursor.count')
  const digest = arr(c.digest, 'cursor.digest', 3)
  if (digest.length !== 3) fail('cursor.digest must hold 3 numbers')
  for (const d of digest) int(d, 'cursor.digest lane', -(2 ** 53))
  for (const [k, n] of Object.entries(obj(c.evalNext, 'cursor.evalNext'))) { str(k, 'cursor.evalNext coordinator'); int(n, 'cursor.evalNext seq', 1) }
  if (c.evalIndex !== undefined) for (const [k, n] of Object.entries(obj(c.evalIndex, 'cursor.evalIndex'))) { str(k, 'cursor.evalIndex coordinator'); int(n, 'cursor.evalIndex') }
  int(c.epoch, 'cursor.epoch')
  if (c.state !== undefined) {
    const lanes = arr(c.state, 'cursor.state', 2)
    if (lanes.length !== 2) fail('cursor.state must hold 2 numbers')
    for (const l of lanes) int(l, 'cursor.state lane')
  }
  holdingField(c.holding, 'cursor.holding')
  partsField(c.parts, 'cursor.parts')
}

/** A snapshot chunk: its values are checked as thunk arguments are, and all of them together stay under a frame. */
function snapshotChunk (m: Record<string, unknown>, limits: Required<MessageLimits>): void {
  str(m.id, 'id')
  ts(m.at, 'at')
  cursor(m.cursor)
  int(m.chunk, 'chunk')
  if (typeof m.last !== 'boolean') fail('last must be a boolean')
  if (m.last) str(m.digest, 'digest', 64)
  else if (m.digest !== undefined) fail('only the last chunk carries the digest')
  const entries = arr(m.entries, 'entries', MAX_CHUNK_ITEMS)
  const txns = arr(m.txns, 'txns', MAX_CHUNK_ITEMS)
  if (!m.last && entries.length + txns.length === 0) fail('chunk holds nothing')
  let bytes = 0
  for (const e of entries) {
    const pair = arr(e, 'entry', 2)
    if (pair.length !== 2 || pair[1] === undefined) fail('entry must be [key, value]')
    str(pair[0], 'entry key', MAX_KEY)
    try {
      bytes += checkValue(pair[1], limits.maxValueBytes)
    } catch (err) {
      fail(`entry value: ${(err as Error).message}`)
    }
  }
  if (bytes > 2 * Math.max(SNAPSHOT_CHUNK_BYTES, limits.maxValueBytes)) fail('chunk too large')
  for (const r of txns) {
    const pair = arr(r, 'exactly-once record', 2)
    if (pair.length !== 2) fail('exactly-once record must be [clientTxnId, record]')
    str(pair[0], 'record clientTxnId')
    const record = str(pair[1], 'record', limits.maxValueBytes)
    if (!isTimestamp(record.slice(0, 36))) fail('record must start with its timestamp')
  }
}

function errorField (x: unknown): void {
  if (x === undefined) return
  const e = obj(x, 'error')
  str(e.name, 'error.name')
  if (typeof e.message !== 'string') fail('error.message must be a string')
}

/** Checks that an untrusted, decoded object is a well-formed Message. Throws InvalidMessageError (and nothing else) on anything malformed. */
export function validateMessage (x: unknown, init: MessageLimits = {}): Message {
  const limits: Required<MessageLimits> = {
    maxThunks: init.maxThunks ?? 4096,
    maxKeys: init.maxKeys ?? 1024,
    maxValueBytes: init.maxValueBytes ?? (1 << 20)
  }
  const m = obj(x, 'message')
  feedFields(m)
  treeFields(m)
  switch (m.t) {
    case 'write':
      batches(m.batches, 'batches', limits.maxThunks, limits.maxThunks, limits)
      wm(m.wm)
      break
    case 'ack':
      int(m.epoch, 'epoch')
      for (const s of arr(m.seqs, 'seqs', limits.maxThunks * 4)) int(s, 'seq', 1)
      wm(m.wm)
      break
    case 'wm':
    case 'wmr':
      wm(m.wm)
      break
    case 'ck':
      int(m.count, 'count', 1)
      str(m.digest, 'digest', 64)
      if (m.h !== undefined) str(m.h, 'h', 1024)
      break
    case 'st-req':
      int(m.count, 'count')
      if (m.h !== undefined) str(m.h, 'h', 1024)
      break
    case 'fwd':
    case 'fwd-req':
    case 'res':
    case 'res-req':
    case 'wm-want':
    case 'pst-req':
    case 'pst-rep':
      partitionMessage(m, limits.maxValueBytes, limits.maxKeys)
      break
    case 'st-rep':
      int(m.count, 'count')
      if (m.state !== undefined) {
        const lanes = arr(m.state, 'state', 2)
        if (lanes.length !== 2) fail('state must be two lanes')
        for (const x of lanes) if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 0xffffffff) fail('state lanes must be 32-bit unsigned integers')
      }
      break
    case 'gap-req':
      str(m.coordinator, 'coordinator')
      int(m.epoch, 'epoch')
      int(m.from, 'from', 1)
      int(m.to, 'to', 1)
      break
    case 'gap-rep':
      batches(m.batches, 'batches', limits.maxThunks, limits.maxThunks, limits)
      if (m.gone !== undefined) {
        const g = obj(m.gone, 'gone')
        str(g.coordinator, 'gone.coordinator')
        int(g.epoch, 'gone.epoch')
        int(g.from, 'gone.from', 1)
      }
      break
    case 'submit': {
      const r = obj(m.req, 'req')
      str(r.clientTxnId, 'clientTxnId')
      str(r.procedure, 'procedure')
      str(r.hash, 'hash')
      if (r.firstAt !== undefined) int(r.firstAt, 'firstAt')
      if (r.caller !== undefined) caller(r.caller, 'caller')
      try {
        checkValue(r.args, limits.maxValueBytes)
      } catch (err) {
        // The value's own error (ValueTooLargeError, InvalidValueError) is the cause: the refusal names it.
        throw new InvalidMessageError(`args: ${(err as Error).message}`, { cause: err })
      }
      str(m.replyTo, 'replyTo')
      break
    }
    case 'submit-rep':
      str(m.clientTxnId, 'clientTxnId')
      if (m.result !== undefined) {
        const r = obj(m.result, 'result')
        if (r.status !== 'committed' && r.status !== 'aborted') fail('result.status')
        ts(r.ts, 'result.ts')
      }
      errorField(m.error)
      break
    case 'read':
      str(m.reqId, 'reqId')
      keys(m.keys, 'keys', limits.maxKeys)
      if (m.range !== undefined) rangeRead(m.range, 'range')
      if (m.consistency !== 'strict' && m.consistency !== 'snapshot') fail('consistency')
      str(m.replyTo, 'replyTo')
      if (m.at !== undefined) ts(m.at, 'at')
      break
    case 'read-rep':
      str(m.reqId, 'reqId')
      if (m.result !== undefined) {
        const r = obj(m.result, 'result')
        ts(r.ts, 'result.ts')
        obj(r.values, 'result.values')
        if (r.entries !== undefined) for (const e of arr(r.entries, 'result.entries', Infinity)) if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string') fail('result.entries must be [key, value] pairs')
      }
      errorField(m.error)
      break
    case 'ts-req':
    case 'ts-rep':
      str(m.reqId, 'reqId')
      if (m.t === 'ts-rep') ts(m.ts, 'ts')
      break
    case 'hello':
      if (m.epoch !== undefined) int(m.epoch, 'epoch')
      if (m.candidate !== undefined && typeof m.candidate !== 'boolean') fail('candidate must be a boolean')
      holdingField(m.parts, 'parts')
      break
    case 'rc-prepare':
    case 'rc-nack':
      int(m.epoch, 'epoch')
      ballot(m.ballot)
      break
    case 'rc-accepted':
      int(m.epoch, 'epoch')
      ballot(m.ballot)
      if (m.sig !== undefined) signature(m.sig, 'sig')
      break
    case 'rc-promise': {
      int(m.epoch, 'epoch')
      ballot(m.ballot)
      if (m.accepted !== undefined) {
        const a = obj(m.accepted, 'accepted')
        ballot(a.ballot)
        epochChange(a.value, limits)
      }
      const r = obj(m.report, 'report')
      for (const [list, what] of [[r.have, 'report.have'], [r.durable ?? [], 'report.durable']] as const) {
        for (const h of arr(list, what, 1024)) {
          const e = obj(h, what)
          str(e.coordinator, `${what}.coordinator`)
          int(e.seq, `${what}.seq`)
        }
      }
      batches(r.held, 'report.held', MAX_RC_THUNKS, MAX_RC_THUNKS, limits)
      ts(r.top, 'report.top')
      break
    }
    case 'rc-accept':
      int(m.epoch, 'epoch')
      ballot(m.ballot)
      epochChange(m.value, limits)
      break
    case 'rc-decided':
      epochChange(m.value, limits)
      if (m.proof !== undefined) proof(m.proof)
      break
    case 'confirm':
    case 'confirmed':
      int(m.epoch, 'epoch')
      int(m.round, 'round', 1)
      break
    case 'rc-fetch':
      int(m.epoch, 'epoch')
      break
    case 'revoke':
      str(m.reqId, 'reqId')
      if (arr(m.targets, 'targets', 16).length === 0) fail('targets must not be empty')
      for (const t of m.targets as unknown[]) revocation(t, 'target')
      break
    case 'revoke-rep':
      str(m.reqId, 'reqId')
      if (m.epoch !== undefined) int(m.epoch, 'epoch')
      errorField(m.error)
      break
    case 'dur':
      ts(m.durable, 'durable')
      ts(m.gc, 'gc')
      break
    case 'snap-req':
    case 'snap-no':
      str(m.id, 'id')
      if (m.t === 'snap-req') int(m.chunk, 'chunk')
      else str(m.why, 'why', 64)
      break
    case 'snap-chunk':
      snapshotChunk(m, limits)
      break
    case 'place': case 'tw': break
    default:
      // Not JSON.stringify: a BigInt (or a cycle) would throw a TypeError instead of the named error.
      fail(`unknown message type ${typeof m.t === 'string' ? JSON.stringify(m.t.slice(0, 64)) : typeof m.t}`)
  }
  return m as unknown as Message
}
