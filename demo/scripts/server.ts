import type { IncomingMessage, ServerResponse } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, preview, type InlineConfig, type Plugin, type PreviewServer } from 'vite'
import { tidelineProcedures } from '@tideline/db/vite'
import type { DemoGroup } from '../src/db.js'

// The demo's Vite build and server, shared by `pnpm demo` and the e2e test.

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** A relay whose health the panel shows (proxied: the relays' HTTP endpoints are loopback-only and send no CORS headers). */
export interface DemoRelay {
  readonly id: string
  /** e.g. http://127.0.0.1:4421 */
  readonly http: string
}

export interface DemoServerOptions {
  /** The group the pages join (served at /group.json). */
  readonly group: Omit<DemoGroup, 'healthUrl'>
  /** Relays to report at /relays.json. */
  readonly relays?: () => readonly DemoRelay[]
  /** @default 0 (any free port) */
  readonly port?: number
  /** @default demo/dist */
  readonly outDir?: string
}

function send (res: ServerResponse, body: unknown): void {
  res.setHeader('content-type', 'application/json')
  res.setHeader('cache-control', 'no-store')
  res.end(JSON.stringify(body))
}

async function healthOf (r: DemoRelay): Promise<unknown> {
  try {
    const h = await (await fetch(`${r.http}/healthz`, { signal: AbortSignal.timeout(800) })).json() as { evaluated?: number, peers?: number }
    return { id: r.id, ok: true, evaluated: h.evaluated, peers: h.peers }
  } catch {
    return { id: r.id, ok: false }
  }
}

function groupPlugin (o: DemoServerOptions): Plugin {
  const handle = (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const path = req.url?.split('?')[0]
    if (path === '/group.json') { send(res, { ...o.group, ...(o.relays === undefined ? {} : { healthUrl: '/relays.json' }) }); return }
    if (path === '/relays.json' && o.relays !== undefined) {
      Promise.all(o.relays().map(healthOf)).then(h => { send(res, h) }, () => { res.statusCode = 500; res.end() })
      return
    }
    next()
  }
  return {
    name: 'tideline-demo-group',
    configureServer (server) { server.middlewares.use(handle) },
    configurePreviewServer (server) { server.middlewares.use(handle) }
  }
}

/**
 * The demo's Vite config: workspace packages from their TypeScript sources,
 * module workers, minified like any production build. Procedures are pinned
 * by a hash of their source; `tidelineProcedures()` computes it before the
 * minifier runs, as the relays do from the same file under tsx.
 */
export function demoViteConfig (o: DemoServerOptions): InlineConfig {
  return {
    root,
    configFile: false,
    logLevel: 'warn',
    clearScreen: false,
    plugins: [groupPlugin(o), tidelineProcedures()],
    resolve: { conditions: ['@tideline/source', 'module', 'browser', 'development|production'] },
    worker: { format: 'es', plugins: () => [tidelineProcedures()] },
    build: {
      outDir: o.outDir ?? join(root, 'dist'),
      emptyOutDir: true,
      target: 'es2022',
      minify: true,
      sourcemap: true,
      rollupOptions: { input: { board: join(root, 'index.html'), seats: join(root, 'seats.html') } }
    },
    preview: { host: '127.0.0.1', port: o.port ?? 0, strictPort: o.port !== undefined && o.port !== 0 }
  }
}

export interface DemoServer {
  /** e.g. http://127.0.0.1:5173 */
  readonly url: string
  readonly server: PreviewServer
  close(): Promise<void>
}

/** Builds the demo (a production build: no dependency discovery reloads mid-session) and serves it on loopback. */
export async function serveDemo (o: DemoServerOptions): Promise<DemoServer> {
  const config = demoViteConfig(o)
  await build(config)
  const server = await preview(config)
  const address = server.httpServer.address()
  if (address === null || typeof address === 'string') throw new Error('preview server has no TCP address')
  return { url: `http://127.0.0.1:${address.port}`, server, close: async () => server.close() }
}
