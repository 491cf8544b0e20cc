import { batchStatement } from './batch-signing.js'
import { signDecision, signWith, verifyDecision } from './decision-signing.js'
import type { Effect, Input } from './protocol/effects.js'
import type { DecisionSigner } from './protocol/reconfig/proof.js'
import { fromHex } from './value.js'

/**
 * A runtime's side of signed batches (batch-signing.ts): carries out
 * `sign-batch` and `verify-batches` with its DecisionSigner, synchronously
 * when the signer is (the simulator's, OpenSSL's in Node).
 */

type SignEffect = Extract<Effect, { t: 'sign-batch' }>
type VerifyEffect = Extract<Effect, { t: 'verify-batches' }>

/** A runtime's side of `sign-batch`: synchronous when the signer is. No signer, or one that fails: the batch goes unsigned (only voters take it then). */
export function signBatch (signer: DecisionSigner | undefined, e: SignEffect): Input | Promise<Input> {
  return signWith(signer, e.statement, sig => ({ t: 'batch-signed', epoch: e.epoch, seq: e.seq, sig }))
}

/** A runtime's side of `verify-batches`: each batch's signature checked against its coordinator's key (false for one that cannot be checked). */
export function verifyBatches (signer: DecisionSigner | undefined, groupId: string, e: VerifyEffect): Input | Promise<Input> {
  const answer = (ok: readonly boolean[]): Input => ({ t: 'batches-verified', from: e.from, batches: e.batches, ok })
  if (signer === undefined) return { t: 'batches-verified', from: e.from, batches: e.batches, ok: e.batches.map(() => false), unchecked: true }
  const checks = e.batches.map(b => {
    try {
      const statement = batchStatement(groupId, b)
      if (statement === undefined || b.sig === undefined || b.sig.length !== 128) return false
      return signer.verify(b.coordinator, statement, fromHex(b.sig))
    } catch {
      // Whatever a batch holds, its check answers no rather than throws.
      return false
    }
  })
  const now = checks.filter((c): c is boolean => typeof c === 'boolean')
  if (now.length === checks.length) return answer(now)
  return Promise.all(checks.map(async c => await Promise.resolve(c).catch(() => false))).then(answer)
}

/** A runtime's side of `verify-entries`: the tree watermark message's signature against its voter's key. */
export function verifyEntries (signer: DecisionSigner | undefined, e: Extract<Effect, { t: 'verify-entries' }>): Input | Promise<Input> {
  const answer = (ok: boolean): Input => ({ t: 'entries-verified', from: e.from, message: e.message, ok })
  if (signer === undefined) return { t: 'entries-verified', from: e.from, message: e.message, ok: false, unchecked: true }
  try {
    if (e.message.sig.length !== 128) return answer(false)
    const ok = signer.verify(e.message.by, e.statement, fromHex(e.message.sig))
    return typeof ok === 'boolean' ? answer(ok) : ok.then(answer, () => answer(false))
  } catch {
    return answer(false)
  }
}

type SigningEffect = Extract<Effect, { t: 'sign-decision' | 'verify-decision' | 'sign-batch' | 'verify-batches' | 'sign-entries' | 'verify-entries' }>

/** Every signing effect, carried out with `signer` (decisions and batches alike). */
export function carrySigning (signer: DecisionSigner | undefined, groupId: string, e: SigningEffect): Input | Promise<Input> {
  switch (e.t) {
    case 'sign-decision': return signDecision(signer, e)
    case 'verify-decision': return verifyDecision(signer, e)
    case 'sign-batch': return signBatch(signer, e)
    case 'verify-batches': return verifyBatches(signer, groupId, e)
    case 'sign-entries': return signWith(signer, e.statement, sig => ({ t: 'entries-signed', message: e.message, sig }))
    case 'verify-entries': return verifyEntries(signer, e)
  }
}
