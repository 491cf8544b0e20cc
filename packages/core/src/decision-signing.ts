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

/** `statement` signed with `signer` (hex), or undefined when there is none or it fails; synchronous when the signer is. */
export function signWith (signer: DecisionSigner | undefined, statement: Uint8Array, answer: (sig: string | undefined) => Input): Input | Promise<Input> {
  const hex = (sig: Uint8Array): Input => answer(toHex(sig))
  if (signer === undefined) return answer(undefined)
  let sig: Uint8Array | Promise<Uint8Array>
  try {
    sig = signer.sign(statement)
  } catch {
    return answer(undefined)
  }
  return sig instanceof Uint8Array ? hex(sig) : sig.then(hex, () => answer(undefined))
}

export function signDecision (signer: DecisionSigner | undefined, e: SignEffect): Input | Promise<Input> {
  return signWith(signer, e.statement, sig => ({ t: 'decision-signed', to: e.to, epoch: e.epoch, ballot: e.ballot, sig }))
}

export function verifyDecision (signer: DecisionSigner | undefined, e: VerifyEffect): Input | Promise<Input> {
  const answer = (ok: boolean): Input => ({ t: 'decision-verified', from: e.from, change: e.change, proof: e.proof, ok })
  if (signer === undefined) return answer(false)
  const ok = checkProof(signer, e.statement, e.proof)
  return typeof ok === 'boolean' ? answer(ok) : ok.then(answer, () => answer(false))
}
