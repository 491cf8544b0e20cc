export { startLocalGroup, startSignallingRelay, RelayProcess, freePort, listening, healthOrNone } from './local-group.js'
export type { LocalGroupOptions, ProcessGroup, Health } from './local-group.js'
export { Recorder, runWorkload, waitQuiescent, waitUntil, finals, ACCOUNTS, LIST_KEYS } from './workload.js'
export { damageRelayStore, type DiskDamage } from './damage.js'
// A Node peer's signer on OpenSSL key objects (the relays'), for Node peers a test or bench starts in-process.
export { nodeDecisionSigner } from '@tideline/relay'
