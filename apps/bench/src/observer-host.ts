import '@tideline/net-libp2p'
import { createInterface } from 'node:readline'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { NetPeer, createNodeLibp2p, decodeSigned } from '@tideline/net-libp2p'
import { MemoryStore } from '@tideline/core'
import { nodeDecisionSigner } from '@tideline/test-kit'
import { simRegistry } from '@tideline/sim'

/**
 * `pnpm bench observers`' observer peers, in a process of their own (the
 * bench runs it at the lowest CPU priority): on users' machines a tab's work
 * is not done on the relays' cores, so here it must not take theirs, nor
 * hold up the bench's callers' event loop. Each observer is a NetPeer with
 * its own libp2p node (TCP on 127.0.0.1) and memory store, connected to the
 * relays as a tab is.
 *
 * Reads one JSON line: { genesis, invite (their text forms), relays (multiaddrs), count, tree }.
 * Writes `{"up":n}` once all are started, then answers each line on stdin:
 * `status` with `{"placed":n,"digests":[…]}`; `stop` stops them and exits.
 */

interface HostConfig {
  readonly genesis: string
  readonly invite: string
  readonly relays: readonly string[]
  readonly count: number
  readonly tree: boolean
}

const lines = createInterface({ input: process.stdin })
const out = (x: unknown): void => { process.stdout.write(`${JSON.stringify(x)}\n`) }
let observers: NetPeer[] = []

for await (const line of lines) {
  if (observers.length === 0 && line.startsWith('{')) {
    const c = JSON.parse(line) as HostConfig
    observers = await Promise.all(Array.from({ length: c.count }, async () => {
      const key = await generateKeyPair('Ed25519')
      return await NetPeer.start({
        privateKey: key,
        // A Node host's signer (OpenSSL key objects made once), as the relays use: libp2p's own makes a key object per check.
        signer: nodeDecisionSigner(key),
        genesis: decodeSigned(c.genesis),
        invite: decodeSigned(c.invite),
        registry: simRegistry,
        store: new MemoryStore(),
        createNode: async k => await createNodeLibp2p({ privateKey: k, listen: ['/ip4/127.0.0.1/tcp/0'], allowPeer: () => true }),
        peers: c.relays,
        candidate: false,
        // As a tab: no watermark gossip (it hears the voters, or its parent in the tree).
        gossip: false,
        ...(c.tree ? { tree: { join: true } } : {})
      })
    }))
    out({ up: observers.length })
  } else if (line === 'status') {
    const status = observers.map(x => x.peer.status())
    out({ placed: status.filter(s => s.tree.parent !== undefined).length, digests: status.map(s => s.digest), checked: status.reduce((n, s) => n + (s.counters['forwarded-checked'] ?? 0), 0), forged: status.reduce((n, s) => n + (s.counters['forged-batch'] ?? 0) + (s.counters['forged-entries'] ?? 0), 0), unplaced: status.reduce((n, s) => n + (s.counters['tree-unplaced'] ?? 0), 0), gaps: status.reduce((n, s) => n + (s.counters['gap-req'] ?? 0), 0) })
  } else if (line === 'stop') {
    await Promise.all(observers.map(async x => { await x.stop().catch(() => {}) }))
    out({ stopped: true })
    process.exit(0)
  }
}
