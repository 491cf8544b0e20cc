import type { Value } from '@tideline/core'
import { sealed } from './checks.js'
import { scan } from './requests.js'
import { ALL, type Name } from './schema.js'

/** A version 3 or 4 record as version 5 holds it, before its check: exactly-once records and meta values become objects. */
function asChecked (store: Name, row: unknown): object {
  switch (store) {
    case 'txns': return { record: row as string }
    case 'meta': return { value: row as Value }
    case 'latest':
    case 'batches':
    case 'runs':
    case 'base':
      return row as object
  }
}

/**
 * Adds a check to every record of a version 3 or 4 database (whose `base`
 * store exists by now), in the versionchange transaction that takes it to
 * version 5: what the records mean does not change, so the upgrade is in
 * place. Reads go SCAN_CHUNK rows at a time, one put per record, every store
 * at once. A failure rejects, and the caller aborts the upgrade, which leaves
 * the database as it was.
 */
export async function addChecks (tx: IDBTransaction): Promise<void> {
  await Promise.all(ALL.map(async name => {
    const store = tx.objectStore(name)
    await scan(store, (key, row) => { store.put(sealed(name, key, asChecked(name, row)), key) })
  }))
}
