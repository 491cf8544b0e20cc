import type { Effect, Input } from './protocol/effects.js'
import { checkProof, type DecisionSigner } from './protocol/reconfig/proof.js'
import { toHex } from './value.js'

/**
 * A runtime's side of signed decisions: carries out `sign-decision` and
 * `verify-decision` with its DecisionSigner. Synchronous when the signer is
 * (the simulator's), so a deterministic driver can use it as is. A signer
 * that throws or rejects yields an unsigned answer or a refusal, never a
 * failed peer.
 */

type SignEffect = Extract<Effect, { t: 'sign-decision' }>
type VerifyEffect = Extract<Effect, { t: 'verify-decision' }>

export function signDecision (signer: DecisionSigner | undefined, e: SignEffect): Input | Promise<Input> {
  const answer = (sig: Uint8Array | undefined): Input => ({ t: 'decision-signed', to: e.to, epoch: e.epoch, ballot: e.ballot, sig: sig === undefined ? undefined : toHex(sig) })
  if (signer === undefined) return answer(undefined)
  let sig: Uint8Array | Promise<Uint8Array>
  try {
    sig = signer.sign(e.statement)
  } catch {
    return answer(undefined)
  }
  return sig instanceof Uint8Array ? answer(sig) : sig.then(answer, () => answer(undefined))
}

export function verifyDecision (signer: DecisionSigner | undefined, e: VerifyEffect): Input | Promise<Input> {
  const answer = (ok: boolean): Input => ({ t: 'decision-verified', from: e.from, change: e.change, proof: e.proof, ok })
  if (signer === undefined) return answer(false)
  const ok = checkProof(signer, e.statement, e.proof)
  return typeof ok === 'boolean' ? answer(ok) : ok.then(answer, () => answer(false))
}
