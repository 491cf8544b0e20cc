// gossipsub as every Tideline node (Node or browser) runs it.

let unsignedGossip = 0

/**
 * gossipsub's fast message id: the Ed25519 signature. gossipsub checks a
 * message's signature before it looks for duplicates unless it has this
 * function, and a relay gets each watermark once from its author and again
 * from every mesh peer that forwards it (a signature check costs ~0.25 ms on
 * this machine). The cache it feeds holds only messages whose signature
 * checked out, and equal signatures mean equal signed content (from, seqno,
 * topic, data), so a forged copy is never taken for a valid message. A
 * message without a signature (refused under StrictSign) gets an id of its own.
 */
export function gossipFastId (message: { readonly signature?: Uint8Array }): string {
  const sig = message.signature
  if (sig === undefined || sig.length === 0) return `unsigned:${unsignedGossip++}`
  let id = 's:'
  for (let i = 0; i < sig.length; i++) id += String.fromCharCode(sig[i] as number)
  return id
}

/** The gossipsub options every Tideline node (Node or browser) runs with. */
export const GOSSIPSUB_OPTIONS = { allowPublishToZeroTopicPeers: true, emitSelf: false, fastMsgIdFn: gossipFastId } as const
