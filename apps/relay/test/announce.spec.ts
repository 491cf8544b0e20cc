import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createGenesis, encodeSigned } from '@tideline/net-libp2p'
import { afterAll, describe, expect, it } from 'vitest'
import { loadOrCreateIdentity } from '../src/identity.js'
import { loadRegistry } from '../src/relay.js'

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

describe('tideline-relay run --announce', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('tells peers the announced address (a TLS proxy in front of it) instead of its loopback listener', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tideline-announce-'))
    dirs.push(dir)
    const data = join(dir, 'relay')
    const me = await loadOrCreateIdentity(data)
    const genesis = await createGenesis(await generateKeyPair('Ed25519'), { groupId: 'announce', voters: [me.id], registryHash: (await loadRegistry(undefined)).hash })
    await writeFile(join(dir, 'genesis.txt'), encodeSigned(genesis))
    const announced = '/dns4/relay.example.com/tcp/443/tls/ws'
    const child = spawn(process.execPath, ['--conditions=@tideline/source', '--import', 'tsx', CLI, 'run', '--data', data, '--genesis', join(dir, 'genesis.txt'),
      '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--announce', announced, '--exit-with-stdin'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let log = ''
    child.stdout.on('data', (d: Buffer) => { log += d.toString() })
    child.stderr.on('data', (d: Buffer) => { log += d.toString() })
    try {
      await expect.poll(async () => readFile(join(data, 'relay.json'), 'utf8').then(t => (JSON.parse(t) as { addresses: string[] }).addresses, () => []), { timeout: 20_000 })
        .toEqual([`${announced}/p2p/${me.id}`])
      expect(log).toContain(`${announced}/p2p/${me.id}`)
    } finally {
      const exited = new Promise(resolve => { child.once('exit', resolve) })
      child.stdin.end()
      await exited
    }
  }, 30_000)
})
