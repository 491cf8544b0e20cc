import { deleteDB } from 'idb'
import { afterEach } from 'vitest'

/** Fresh database names (`prefix-0`, `prefix-1`, …) for one spec file; each is deleted after the test that took it. */
export function freshNames (prefix: string): () => string {
  let n = 0
  const names: string[] = []
  afterEach(async () => {
    for (const name of names.splice(0)) await deleteDB(name)
  })
  return () => {
    const name = `${prefix}-${n++}`
    names.push(name)
    return name
  }
}
