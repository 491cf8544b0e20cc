import { execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

// The published shape of Tideline, tried as a new user would: every public
// package is built and packed, the tarballs are installed with plain `npm
// install` into an empty folder outside the workspace, and the README's Node
// quick start runs there, step by step as written (only its `npm install`
// line installs the tarballs instead of the registry's copies). Plain `node`,
// no source condition, no tsx.

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../..', import.meta.url))
const PUBLIC = ['packages/core', 'packages/store-node', 'packages/store-idb', 'packages/net-libp2p', 'packages/db', 'packages/workloads', 'apps/relay']

interface Step { readonly kind: 'shell', readonly text: string }
interface File { readonly kind: 'file', readonly name: string, readonly text: string }

/** The README's quick start: its marked shell blocks and files, in order. */
async function quickStart (): Promise<Array<Step | File>> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const out: Array<Step | File> = []
  const re = /<!-- quickstart-(shell|file: ([^ ]+)) -->\n```[a-z]*\n([\s\S]*?)```/g
  for (const m of readme.matchAll(re)) {
    const text = m[3] as string
    if (m[1] === 'shell') out.push({ kind: 'shell', text })
    else out.push({ kind: 'file', name: m[2] as string, text })
  }
  return out
}

/** A bash heredoc that writes `text` to `name` exactly. */
const heredoc = (f: File): string => `cat > ${f.name} <<'TIDELINE_QUICKSTART_EOF'\n${f.text}TIDELINE_QUICKSTART_EOF\n`

describe('the packed packages', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('install with npm outside the workspace and run the README quick start with plain node', async () => {
    const steps = await quickStart()
    expect(steps.filter(s => s.kind === 'file').map(s => s.name)).toEqual(['procedures.js', 'app.js'])

    await run('pnpm', ['build'], { cwd: ROOT, maxBuffer: 1 << 24 })
    const tarballs = await mkdtemp(join(tmpdir(), 'tideline-tarballs-'))
    dirs.push(tarballs)
    for (const p of PUBLIC) await run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: join(ROOT, p) })
    const packed = (await readdir(tarballs)).filter(f => f.endsWith('.tgz')).map(f => join(tarballs, f))
    expect(packed).toHaveLength(PUBLIC.length)

    const home = await mkdtemp(join(tmpdir(), 'tideline-newcomer-'))
    dirs.push(home)
    await mkdir(home, { recursive: true })
    let script = 'set -euo pipefail\n'
    for (const s of steps) {
      if (s.kind === 'file') {
        script += heredoc(s)
        continue
      }
      // The one departure from the README: the packages come from the tarballs, not the registry.
      script += s.text.replace('npm install @tideline/db @tideline/relay', `npm install --no-audit --no-fund ${packed.join(' ')}`)
    }
    const env: NodeJS.ProcessEnv = { ...process.env }
    // Nothing of the workspace may leak in: no source condition, no tsx, no workspace node_modules.
    delete env.NODE_OPTIONS
    delete env.NODE_PATH
    const child = spawn('bash', ['-c', script], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    const code = await new Promise<number | null>(resolve => { child.on('exit', c => { resolve(c) }) })
    try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    const relayLog = await readFile(join(home, 'tideline-quickstart', 'relay.log'), 'utf8').catch(() => '')
    expect(code, `${output}\n--- relay.log\n${relayLog}`).toBe(0)
    expect(output).toContain('committed 5')
    expect(output).toContain('read 5')
    expect(output).toContain('alice is now 5')
    // What was installed is the built JavaScript, not TypeScript sources.
    const db = JSON.parse(await readFile(join(home, 'tideline-quickstart', 'node_modules', '@tideline', 'db', 'package.json'), 'utf8')) as { exports: Record<string, unknown>, dependencies: Record<string, string> }
    expect(JSON.stringify(db.exports)).not.toContain('@tideline/source')
    expect(db.dependencies['@tideline/core']).toBe('0.1.0')
  }, 600_000)
})
