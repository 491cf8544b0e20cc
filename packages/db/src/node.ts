import { createNodeLibp2p } from '@tideline/net-libp2p'
import { LevelStore } from '@tideline/store-node'
import { openDatabase as openWith, type Database, type OpenOptions } from './database.js'
import type { ProcedureDef } from './procedures.js'

export * from './index.js'

/** Opening a database in Node: like the browser's, with a directory instead of a worker. */
export interface NodeOpenOptions<P> extends Omit<OpenOptions<P>, 'worker' | 'store' | 'closeStore' | 'createNode'> {
  /** Where the replica's durable store (LevelDB) and identity live; created when missing. */
  readonly dir: string
}

/**
 * Opens a database in Node with one call: a durable store in `dir` (its
 * identity is kept there too, so a reopen is the same peer with its data)
 * and a libp2p node that only dials out (TCP or WebSockets to `peers`).
 * `close()` closes the store.
 *
 * ```ts
 * import { openDatabase } from '@tideline/db/node'
 * const db = await openDatabase({ name: 'bank', dir: './data', procedures, peers, invite, creator })
 * ```
 */
export async function openDatabase<P extends Record<string, ProcedureDef<any, any>>> (options: NodeOpenOptions<P>): Promise<Database<P>> {
  const store = await LevelStore.open({ path: options.dir })
  return await openWith({
    ...options,
    store,
    closeStore: true,
    createNode: async privateKey => await createNodeLibp2p({ privateKey, listen: [], allowPeer: () => true })
  })
}
