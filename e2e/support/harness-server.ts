import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, preview, type InlineConfig } from 'vite'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'pages')
const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', '.harness-build')

/** The test pages' Vite config: workspace packages from their TypeScript sources, module workers. */
function config (): InlineConfig {
  const input: Record<string, string> = {}
  for (const d of readdirSync(root, { withFileTypes: true })) if (d.isDirectory()) input[d.name] = join(root, d.name, 'index.html')
  return {
    root,
    configFile: false,
    logLevel: 'warn',
    resolve: { conditions: ['@tideline/source', 'module', 'browser', 'development|production'] },
    worker: { format: 'es' },
    build: { outDir, emptyOutDir: true, target: 'es2022', minify: false, sourcemap: true, rollupOptions: { input } },
    preview: { host: '127.0.0.1', port: 0, strictPort: false }
  }
}

export interface Harness {
  /** Base URL, e.g. http://127.0.0.1:41234 (pages at /store/, …). */
  readonly url: string
  close(): Promise<void>
}

/**
 * Builds the test pages once (a production build: no dependency discovery or
 * reloads halfway through a test, as the dev server can do) and serves them on
 * an ephemeral loopback port.
 */
export async function startHarness (): Promise<Harness> {
  await build(config())
  const server = await preview(config())
  const address = server.httpServer.address()
  if (address === null || typeof address === 'string') throw new Error('preview server has no TCP address')
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: async () => server.close()
  }
}
