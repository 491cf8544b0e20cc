/**
 * The protocol's named things: the counters a peer keeps, the events it logs
 * (with the level a host should log them at), and the meta records it
 * persists. Hosts (relay metrics and logs, status panels) read these names.
 */

/** Counters in `PeerStatus.counters`. */
export type Counter =
  | 'invalid' | 'handler-error' | 'minted' | 'batches' | 'evaluated' | 'retransmit' | 'gap-req'
  | 'submit-refused' | 'rate-limited' | 'submit-invalid-refused' | 'read-invalid-refused' | 'ack-refused' | 'batch-refused' | 'batch-cut' | 'late-batch'
  | 'write-from-non-voter' | 'write-not-own-refused' | 'write-sealed' | 'gap-from-non-voter' | 'gap-req-refused'
  | 'forwarded-checked' | 'forwarded-unsigned' | 'forwarded-projection-refused' | 'forwarded-shunned' | 'forwarded-hung-up' | 'forwarded-unchecked' | 'forged-batch'
  | 'forged-entries' | 'batches-from-members' | 'tw-checked' | 'tw-stale' | 'tw-not-parent' | 'tw-unsigned' | 'tree-child-taken' | 'tree-redirected' | 'tree-placed' | 'tree-moved' | 'tree-unplaced' | 'place-refused'
  | 'wm-not-own-refused' | 'wmr-refused' | 'entries-relayed' | 'tails-taken' | 'routed-to-set' | 'clock-skew-refused' | 'digest-mismatch' | 'fwd-refused' | 'res-refused'
  | 'batches-received' | 'thunks-received' | 'projection-refused' | 'span-refused'
  | 'own-stall' | 'quiesced' | 'woke' | 'rc-proposed' | 'rc-proposal-timeout' | 'rc-nacked' | 'rc-refused' | 'rc-sealed'
  | 'rc-decided' | 'rc-decided-replay' | 'rc-decided-refused' | 'rc-decided-relayed' | 'rc-decided-forged' | 'rc-sign-failed' | 'rc-reach-out' | 'rc-installed' | 'rc-resubmitted'
  | 'revoke-requested' | 'revoke-refused' | 'revoked' | 'revoked-refused'
  | 'gc-steps' | 'gc-steps-partial' | 'gc-batches-removed' | 'gc-versions-removed' | 'gc-records-removed'
  | 'snapshots-served' | 'snapshot-chunks-served' | 'snapshot-chunks' | 'snapshots-installed' | 'snapshot-refused' | 'snapshot-retry' | 'snapshot-declined' | 'snapshot-declined-heard' | 'snapshot-mismatch' | 'snapshot-outvoted' | 'snapshot-evicted' | 'snapshot-unvouched' | 'heal-started' | 'healed' | 'store-damaged'
  | 'batch-damaged' | 'state-damaged' | 'prepare-damaged' | 'scrubs'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Every event the protocol logs, and its level. */
export const LOG_EVENTS = {
  recovered: 'info',
  'invalid-message': 'warn',
  'handler-error': 'warn',
  'batch-refused': 'debug',
  'late-batch': 'warn',
  'forged-batch': 'warn',
  'forged-entries': 'warn',
  'epoch-evaluated': 'debug',
  diverged: 'error',
  'rc-propose': 'info',
  'rc-accept': 'info',
  'rc-installed': 'info',
  'rc-decided-forged': 'warn',
  'revoke-requested': 'info',
  'store-failed': 'error',
  'snapshot-fetch': 'info',
  'snapshot-import': 'debug',
  healing: 'error',
  'store-damaged': 'error',
  'batch-damaged': 'error',
  'state-damaged': 'error',
  healed: 'warn',
  'snapshot-installed': 'info',
  'snapshot-refused': 'warn',
  'snapshot-export': 'info',
  'snapshot-exported': 'debug',
  'snapshot-chunk': 'debug',
  'snapshot-declined': 'debug',
  'snapshot-vouched': 'debug',
  'snapshot-unvouched': 'warn'
} as const satisfies Record<string, LogLevel>

export type LogEvent = keyof typeof LOG_EVENTS

/** The level a host should log a protocol event at (`info` for names the protocol does not log). */
export function logLevelOf (event: string): LogLevel {
  return (LOG_EVENTS as Record<string, LogLevel>)[event] ?? 'info'
}
