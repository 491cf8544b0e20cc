import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const UNIT = fileURLToPath(new URL('../deploy/tideline-relay.service', import.meta.url))
const ANALYZE = '/usr/bin/systemd-analyze'

/** `systemd-analyze verify` of a unit in a throwaway root holding what it names; returns what it complained about. */
async function verify (unit: string, dirs: string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'tideline-systemd-'))
  dirs.push(root)
  await mkdir(join(root, 'usr/local/bin'), { recursive: true })
  await mkdir(join(root, 'etc/tideline'), { recursive: true })
  await mkdir(join(root, 'etc/systemd/system'), { recursive: true })
  await cp('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true })
  await writeFile(join(root, 'usr/local/bin/tideline-relay'), '#!/bin/sh\n')
  await chmod(join(root, 'usr/local/bin/tideline-relay'), 0o755)
  await writeFile(join(root, 'etc/tideline/relay.env'), 'TIDELINE_RELAY_ARGS=--genesis /etc/tideline/genesis.txt\n')
  await cp(unit, join(root, 'etc/systemd/system/tideline-relay.service'))
  const { stdout, stderr } = await run(ANALYZE, ['verify', '--man=no', `--root=${root}`, join(root, 'etc/systemd/system/tideline-relay.service')])
  return `${stdout}${stderr}`.trim()
}

describe.skipIf(!existsSync(ANALYZE))('the relay\'s systemd unit', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('passes systemd-analyze verify without a complaint, which a broken unit does not', async () => {
    expect(await verify(UNIT, dirs)).toBe('')
    const broken = join(await mkdtemp(join(tmpdir(), 'tideline-unit-')), 'tideline-relay.service')
    dirs.push(join(broken, '..'))
    await writeFile(broken, (await readFile(UNIT, 'utf8')).replace('KillSignal=SIGTERM', 'KillSignal=SIGTERMX'))
    expect(await verify(broken, dirs)).toContain('Failed to parse signal name')
  })
})
