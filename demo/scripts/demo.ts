import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDevGroup } from '@tideline/relay'
import { PARTITIONS } from '../src/procedures.js'
import { serveDemo } from './server.js'

// `pnpm demo`: three local relays (voters, on fixed loopback ports, data kept in
// .tideline/demo between runs) and the demo app, built and served on loopback.
// Ctrl-C stops both.

const demoDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const repoRoot = join(demoDir, '..')
const BASE_PORT = Number(process.env.TIDELINE_DEMO_RELAY_PORT ?? 4501)
const APP_PORT = Number(process.env.TIDELINE_DEMO_PORT ?? 5180)
const quiet = process.env.TIDELINE_DEMO_VERBOSE === undefined

const log = (line: string): void => { process.stdout.write(`${line}\n`) }

log('starting 3 relays…')
const group = await startDevGroup({
  dir: join(repoRoot, '.tideline', 'demo'),
  basePort: BASE_PORT,
  procedures: join(demoDir, 'src', 'procedures.ts'),
  groupId: 'tideline-demo',
  // Each board its own partition (and the seats one more): a tab replicates only the boards it has open.
  partitions: PARTITIONS,
  // Relay logs are JSON lines, one per event: shown only when asked for, except exits and errors.
  print: line => { if (!quiet || line.includes('exited') || line.includes('"level":"error"') || line.includes('Error')) log(line) }
})

let stopping = false
let app: Awaited<ReturnType<typeof serveDemo>> | undefined
const stop = (code: number): void => {
  if (stopping) return
  stopping = true
  log('\nstopping the app and the relays…')
  Promise.allSettled([app?.close(), group.stop()]).then(() => { process.exit(code) }, () => { process.exit(1) })
}
process.once('SIGINT', () => { stop(0) })
process.once('SIGTERM', () => { stop(0) })

try {
  log('building the app…')
  app = await serveDemo({
    group: { peers: group.info.relays.map(r => r.ws), invite: group.info.invite, creator: group.info.creator, genesis: group.info.genesis },
    relays: () => group.info.relays.map(r => ({ id: r.id, http: r.http })),
    port: APP_PORT
  })
} catch (err) {
  log(`the app did not start: ${(err as Error).message}`)
  stop(1)
}

if (app !== undefined) {
  log([
    '',
    `Tideline demo: ${app.url}/`,
    `  board:       ${app.url}/`,
    `  last seats:  ${app.url}/seats.html`,
    `  relays:      ${group.info.relays.map(r => r.ws.replace(/\/p2p\/.*/, '')).join(', ')}`,
    '  Open it in several tabs or browsers; Ctrl-C stops the relays and the app.',
    ''
  ].join('\n'))
}
