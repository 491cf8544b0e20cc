import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, test } from '@playwright/test'
import { multiaddr } from '@multiformats/multiaddr'
import { encodeSigned } from '@tideline/net-libp2p'
import { freePort, healthOrNone, listening, startLocalGroup, type ProcessGroup } from '@tideline/test-kit'

// Relays behind a TLS reverse proxy, as they are deployed for https pages: a
// page served over https may not open ws:// (mixed content), so it reaches
// each relay at wss:// through nginx, which terminates TLS (a self-signed
// certificate made here) and passes the WebSocket on to the relay's ws://
// listener on loopback. Noise still authenticates the relay end to end.

const PROCEDURES = fileURLToPath(new URL('../pages/db/procedures.ts', import.meta.url))
const PAGES = fileURLToPath(new URL('../.harness-build', import.meta.url))
const NGINX = process.env.TIDELINE_NGINX ?? '/usr/sbin/nginx'
const run = promisify(execFile)
/** The TCP port of a relay's multiaddr. */
const tcpPort = (address: string): number => Number(multiaddr(address).getComponents().find(c => c.name === 'tcp')?.value)

let group: ProcessGroup
let dir: string
let nginx: ChildProcess | undefined
let pagePort: number
let proxied: string[]

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  test.skip(!existsSync(NGINX), `no nginx at ${NGINX} (apt-get install nginx, or set TIDELINE_NGINX)`)
  // Each relay announces only its proxied wss:// address, as a deployed relay does (--announce):
  // peers that learn its addresses learn no way around the proxy.
  const relayPorts = await Promise.all([0, 1, 2].map(async () => freePort()))
  group = await startLocalGroup({ relays: 3, procedures: PROCEDURES, groupId: 'tls-proxy', relayArgs: i => ['--announce', `/ip4/127.0.0.1/tcp/${relayPorts[i] as number}/tls/ws`] })
  dir = await mkdtemp(join(tmpdir(), 'tideline-tls-'))
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')])
  pagePort = await freePort()
  const tls = `ssl_certificate ${join(dir, 'cert.pem')}; ssl_certificate_key ${join(dir, 'key.pem')};`
  const servers = group.relays.map((r, i) => `
    server {
      listen 127.0.0.1:${relayPorts[i] as number} ssl; ${tls}
      location / {
        proxy_pass http://127.0.0.1:${tcpPort(r.ws)};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 1h;
      }
    }`).join('\n')
  const conf = `
    ${process.getuid?.() === 0 ? 'user root;' : ''}
    worker_processes 1;
    daemon off;
    pid ${join(dir, 'nginx.pid')};
    error_log ${join(dir, 'error.log')} warn;
    events { worker_connections 256; }
    http {
      access_log off;
      types { text/html html; application/javascript js; text/css css; application/wasm wasm; application/json json map; }
      client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
      server { listen 127.0.0.1:${pagePort} ssl; ${tls} root ${PAGES}; }
      ${servers}
    }`
  await writeFile(join(dir, 'nginx.conf'), conf)
  nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'inherit', 'inherit'] })
  proxied = group.relays.map((r, i) => `/ip4/127.0.0.1/tcp/${relayPorts[i] as number}/tls/ws/p2p/${r.id}`)
  // nginx is up once the page's port takes connections.
  await expect.poll(async () => listening(pagePort), { timeout: 10_000 }).toBe(true)
})

test.afterAll(async () => {
  nginx?.kill('SIGQUIT')
  await group?.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

test('an https page reaches the relays over wss:// through a TLS reverse proxy and commits', async ({ browser }) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true })
  const page = await context.newPage()
  await page.goto(`https://127.0.0.1:${pagePort}/db/`)
  await page.waitForFunction(() => window.dbHarness !== undefined)
  expect(await page.evaluate(() => location.protocol)).toBe('https:')
  // (On a real host an https page could not open the relays' plain ws:// at all; Chromium
  // treats loopback as trustworthy and would allow it here, so only the wss:// path is used.)
  const opened = await page.evaluate(async o => window.dbHarness.open(o), { peers: proxied, invite: encodeSigned(group.invite), creator: group.creatorId })
  expect(opened.id).toMatch(/^12D3KooW/)
  const r = await page.evaluate(async () => window.dbHarness.transfers(20, 4))
  expect(r.failed).toEqual([])
  expect(r.committed + r.aborted).toBe(20)
  expect(r.committed).toBeGreaterThan(0)
  const status = await page.evaluate(() => window.dbHarness.status())
  expect(status.network).toBe('online')
  expect(status.votersConnected).toBe(3)
  // The relays evaluated what the page committed: one history.
  await expect.poll(async () => {
    const relays = await healthOrNone(group.relays)
    if (relays === undefined) return 0
    const digests = new Set(relays.map(h => `${h.evaluated}:${h.digest}`))
    const s = await page.evaluate(() => window.dbHarness.status())
    digests.add(`${s.evaluated}:${s.digest}`)
    return digests.size
  }, { timeout: 20_000 }).toBe(1)
  // Every connection went through the proxy: without it the page loses all three voters.
  nginx?.kill('SIGTERM')
  await expect.poll(async () => (await page.evaluate(() => window.dbHarness.status())).votersConnected, { timeout: 20_000 }).toBe(0)
  await context.close()
})
