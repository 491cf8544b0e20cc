import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startRelay } from '../src/relay.js'

describe('a signal-only relay (a group of tab voters, docs/design/tabs.md §4)', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })
  const dir = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'tideline-signal-'))
    dirs.push(d)
    return d
  }

  it('hosts no group: a genesis is refused at the start, and a group added at run time too; it keeps nothing but its identity', async () => {
    const events: string[] = []
    const logger = (event: string): void => { events.push(event) }
    await expect(startRelay({ dataDir: await dir(), signalOnly: true, genesis: 'anything', listen: ['/ip4/127.0.0.1/tcp/0'], logger })).rejects.toMatchObject({ name: 'InvalidArgumentError' })
    const data = await dir()
    const relay = await startRelay({ dataDir: data, signalOnly: true, listen: ['/ip4/127.0.0.1/tcp/0/ws'], logger })
    try {
      expect(relay.groups.size).toBe(0)
      await expect(relay.groups.add({ genesis: 'anything' })).rejects.toMatchObject({ name: 'InvalidArgumentError' })
      expect(relay.addresses.some(a => a.includes('/ws/'))).toBe(true)
      expect((await readdir(data)).sort()).toEqual(['identity.key', 'relay.json'])
    } finally {
      await relay.stop()
    }
  }, 30_000)
})
