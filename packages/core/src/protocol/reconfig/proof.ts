import type { Ballot, EpochChange } from '../../types.js'
import { canonical, fromHex } from '../../value.js'

/**
 * Signed decisions (issue 27's "signed reconfiguration decisions"). Each
 * acceptor signs what it accepted: the group, the epoch being ended, the
 * ballot and the value. A majority of one epoch's voters having accepted one
 * value under one ballot is what makes it chosen (Paxos), so their
 * signatures together prove the decision to anyone who knows that epoch's
 * voters: any member may pass it on, and a replica every voter of whose
 * epoch is gone can still follow the chain of decisions to the present.
 */

/** The runtime's keys: a peer's own signature, and a check of another peer's (its id names its public key). */
export interface DecisionSigner {
  sign(statement: Uint8Array): Uint8Array | Promise<Uint8Array>
  /** Whether `sig` is `peer`'s signature of `statement`; false (not a throw) for a peer whose key it cannot find. */
  verify(peer: string, statement: Uint8Array, sig: Uint8Array): boolean | Promise<boolean>
}

/** The accepting majority's signatures over one ballot's value (hex). */
export interface DecisionProof {
  readonly ballot: Ballot
  readonly sigs: ReadonlyArray<{ readonly voter: string, readonly sig: string }>
}

const DOMAIN = 'tideline/decision/1'
const encoder = new TextEncoder()

/** What an acceptor of `epoch` signs when it accepts `value` under `ballot` in group `groupId`. */
export function decisionStatement (groupId: string, epoch: number, ballot: Ballot, value: EpochChange): Uint8Array {
  return encoder.encode(canonical({ domain: DOMAIN, group: groupId, epoch, ballot: { n: ballot.n, by: ballot.by }, value: value as never }))
}

/** Whether `proof` names a majority of `voters`, each once, and nobody else (the signatures are checked apart: `checkProof`). */
export function proofCovers (proof: DecisionProof, voters: readonly string[]): boolean {
  const signers = new Set(proof.sigs.map(x => x.voter))
  if (signers.size !== proof.sigs.length) return false
  for (const v of signers) if (!voters.includes(v)) return false
  return signers.size >= Math.floor(voters.length / 2) + 1
}

/** Whether every signature in `proof` is its voter's over `statement` (synchronous when the signer is). */
export function checkProof (signer: DecisionSigner, statement: Uint8Array, proof: DecisionProof): boolean | Promise<boolean> {
  const results = proof.sigs.map(x => {
    try {
      return signer.verify(x.voter, statement, fromHex(x.sig))
    } catch {
      return false
    }
  })
  if (results.every(r => typeof r === 'boolean')) return results.every(r => r === true)
  return Promise.all(results.map(r => Promise.resolve(r).catch(() => false))).then(all => all.every(r => r))
}
