import { execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium } from '@playwright/test'
import { requireChromium } from '@tideline/e2e/support/chromium'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, listening } from '../src/local-group.js'

// The published shape of Tideline, tried as a new user would: every public
// package is built and packed, the tarballs are installed with plain `npm
// install` into an empty folder outside the workspace, and the README's quick
// start runs there, step by step as written (only its first `npm install` line
// installs the tarballs instead of the registry's copies): the Node app with
// plain `node`, then a page built and minified by Vite, opened in two Chromium
// tabs. No source condition, no tsx.

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
  // An npm install leaves tens of thousands of files; on a slow CI disk removing them took over the default 10 s.
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true, maxRetries: 3 }) }, 180_000)

  it('install with npm outside the workspace and run the README quick start with plain node', async () => {
    const steps = await quickStart()
    expect(steps.filter(s => s.kind === 'file').map(s => s.name)).toEqual(['procedures.js', 'app.js', 'vite.config.js', 'worker.js', 'index.html', 'main.js'])

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
    const port = await freePort()
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port) }
    // Nothing of the workspace may leak in: no source condition, no tsx, no workspace node_modules.
    delete env.NODE_OPTIONS
    delete env.NODE_PATH
    const child = spawn('bash', ['-c', script], { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    let exited: number | null | undefined
    child.on('exit', c => { exited = c })
    const dir = join(home, 'tideline-quickstart')
    const browser = await chromium.launch(requireChromium(() => chromium.executablePath()))
    try {
      // The script ends by serving the built page (vite preview): wait for it, or for the script to fail.
      const deadline = Date.now() + 300_000
      while (exited === undefined && !(await listening(port)) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 500))
      const relayLog = await readFile(join(dir, 'relay.log'), 'utf8').catch(() => '')
      expect(exited, `${output}\n--- relay.log\n${relayLog}`).toBeUndefined()
      expect({ up: await listening(port), output }).toMatchObject({ up: true })
      // The Node app ran first.
      expect(output).toContain('committed 5')
      expect(output).toContain('read 5')
      expect(output).toContain('alice is now 5')

      // Two tabs of the minified page share the state: a deposit in one shows in both.
      const context = await browser.newContext()
      const [a, b] = await Promise.all([context.newPage(), context.newPage()])
      for (const p of [a, b]) await p.goto(`http://127.0.0.1:${port}/`)
      for (const p of [a, b]) await p.locator('#alice').filter({ hasText: 'alice has 5' }).waitFor({ timeout: 60_000 })
      await a.click('#deposit')
      for (const p of [a, b]) await p.locator('#alice').filter({ hasText: 'alice has 6' }).waitFor({ timeout: 30_000 })
      await a.locator('#read').filter({ hasText: 'committed; a strict read says 6' }).waitFor({ timeout: 30_000 })
      // The page that ran is Vite's minified build.
      const js = (await readdir(join(dir, 'dist', 'assets'))).filter(f => f.endsWith('.js'))
      expect(js.length).toBeGreaterThan(0)
      await context.close()
    } finally {
      await browser.close()
      try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    }
    // What was installed is the built JavaScript, not TypeScript sources.
    const db = JSON.parse(await readFile(join(dir, 'node_modules', '@tideline', 'db', 'package.json'), 'utf8')) as { exports: Record<string, unknown>, dependencies: Record<string, string> }
    expect(JSON.stringify(db.exports)).not.toContain('@tideline/source')
    expect(db.dependencies['@tideline/core']).toBe('0.1.0')
  }, 600_000)
})
