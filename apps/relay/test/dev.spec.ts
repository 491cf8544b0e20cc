import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { prepareDevGroup } from '../src/dev.js'

const module = (n: number): string => `export const procedures = {
  put: { keys: a => ({ reads: [], writes: [a.k] }), run (tx, a) { tx.put(a.k, a.v + ${n}); return null } }
}
`

describe('the dev group', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('reuses its group while nothing changed; when the procedures change it makes a new group and moves the old stores aside, never deleting them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tideline-dev-'))
    dirs.push(dir)
    const [a, b] = [join(dir, 'a.mjs'), join(dir, 'b.mjs')]
    await writeFile(a, module(1))
    await writeFile(b, module(2))
    const first = await prepareDevGroup({ dir, basePort: 4600, procedures: a })
    expect(first.renewed).toBeUndefined()
    // A relay's store with data in it.
    await mkdir(join(dir, 'relay-0', 'store'), { recursive: true })
    await writeFile(join(dir, 'relay-0', 'store', 'DATA'), 'precious')

    const same = await prepareDevGroup({ dir, basePort: 4600, procedures: a })
    expect(same.renewed).toBeUndefined()
    expect(same.info.genesis).toBe(first.info.genesis)
    expect(await readFile(join(dir, 'relay-0', 'store', 'DATA'), 'utf8')).toBe('precious')

    const changed = await prepareDevGroup({ dir, basePort: 4600, procedures: b })
    expect(changed.renewed).toMatch(/the procedures changed/)
    expect(changed.info.genesis).not.toBe(first.info.genesis)
    expect(changed.movedStores).toHaveLength(1)
    const moved = changed.movedStores[0] as string
    expect(await readFile(join(moved, 'DATA'), 'utf8')).toBe('precious')
    expect((await readdir(join(dir, 'relay-0'))).filter(f => f === 'store')).toEqual([])
  })
})
