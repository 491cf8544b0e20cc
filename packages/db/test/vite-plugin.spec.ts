import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'vite'
import { afterAll, describe, expect, it } from 'vitest'
import { tidelineProcedures } from '../src/vite.js'
import { registryHash } from './fixtures/minify-procedures.js'

const ENTRY = fileURLToPath(new URL('./fixtures/minify-procedures.ts', import.meta.url))

/** Bundles and minifies the fixture with Vite (Rolldown); returns the registry hash the bundle computes, and its code. */
async function bundledHash (plugins: ReturnType<typeof tidelineProcedures>[], dirs: string[]): Promise<{ hash: string, code: string }> {
  const outDir = await mkdtemp(join(tmpdir(), 'tideline-vite-'))
  dirs.push(outDir)
  await build({
    configFile: false,
    logLevel: 'silent',
    plugins,
    resolve: { conditions: ['@tideline/source', 'module', 'browser', 'development|production'] },
    build: { outDir, minify: true, target: 'es2022', lib: { entry: ENTRY, formats: ['es'], fileName: 'bundle' } }
  })
  const file = (await readdir(outDir)).find(f => f.endsWith('.js')) as string
  const code = await readFile(join(outDir, file), 'utf8')
  const mod = await import(pathToFileURL(join(outDir, file)).href) as { registryHash: string }
  return { hash: mod.registryHash, code }
}

describe('the Vite plugin (tidelineProcedures)', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('keeps a minified bundle\'s procedure hashes equal to the source\'s; without it they differ', async () => {
    const without = await bundledHash([], dirs)
    // Minified for real: the functions no longer read as written, so the run-time fingerprints differ.
    expect(without.code).not.toContain('fromBalance')
    expect(without.hash).not.toBe(registryHash)
    const withPlugin = await bundledHash([tidelineProcedures()], dirs)
    expect(withPlugin.code).toContain('fingerprint:')
    expect(withPlugin.hash).toBe(registryHash)
  }, 60_000)
})
