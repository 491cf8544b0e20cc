import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TS_INFINITY, makeTimestamp, peerTag, type Timestamp } from '@tideline/core'
import { LevelStore } from '../src/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '../../..')
const writer = join(here, 'fixtures/crash-writer.ts')
const PER_BATCH = 50
const KILLS = 5
const tag = peerTag('crash')
const crashTs = (batch: number, j: number): Timestamp => makeTimestamp(1_000_000 + batch, tag, j)

interface Run { readonly start: number, readonly lastDone: number, readonly killedAfterMs: number }

/** Starts the writer, lets it finish at least `minBatches`, then SIGKILLs it after a random delay. */
async function runAndKill (path: string, minBatches: number): Promise<Run> {
  const child = spawn(process.execPath, ['--conditions=@tideline/source', '--import', 'tsx', writer, path, String(PER_BATCH)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  let start = -1
  let lastDone = -1
  let killedAfterMs = -1
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const closed = new Promise<void>(resolve => { child.on('close', () => { resolve() }) })
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    const lines = out.split('\n')
    out = lines.pop() ?? ''
    for (const line of lines) {
      if (line.startsWith('start ')) start = Number(line.slice(6))
      else lastDone = Number(line)
    }
    if (killedAfterMs < 0 && start > 0 && lastDone >= start + minBatches - 1) {
      killedAfterMs = Math.floor(Math.random() * 100)
      setTimeout(() => { child.kill('SIGKILL') }, killedAfterMs)
    }
  })
  await closed
  if (killedAfterMs < 0) throw new Error(`writer exited before it was killed:\n${err}`)
  expect(child.signalCode).toBe('SIGKILL')
  return { start, lastDone, killedAfterMs }
}

describe('LevelStore crash consistency (SIGKILL of a writing process)', () => {
  let path = ''
  beforeAll(async () => { path = await mkdtemp(join(tmpdir(), 'tideline-crash-')) })
  afterAll(async () => { await rm(path, { recursive: true, force: true }) })

  it(`keeps every acknowledged strict batch and never a torn one, across ${KILLS} kills`, async () => {
    let previous = 0
    for (let round = 0; round < KILLS; round++) {
      const run = await runAndKill(path, 5 + Math.floor(Math.random() * 20))
      const context = `round ${round}: batches ${run.start}..${run.lastDone} acknowledged, killed ${run.killedAfterMs} ms after the threshold`
      const store = await LevelStore.open({ path })
      try {
        const n = await store.getMeta('n')
        const last = typeof n === 'number' ? n : -1
        const at = Math.max(last, 1) // timestamps need a batch >= 1; a missing counter already fails lostAcknowledged
        const keys = Array.from({ length: PER_BATCH }, (_, j) => `k${j}`)
        // What the store holds, next to what batch `last` (whole, and nothing after it) implies.
        // One comparison, with the round's context in the diff when it fails.
        const found = {
          context,
          resumedAt: run.start,
          // Every acknowledged batch survived; at most the one in flight landed beyond it.
          lostAcknowledged: last < run.lastDone,
          beyondInFlight: last > run.lastDone + 1,
          // The values come from the same batch as the counter: none older, none newer.
          values: await store.latestValues(keys, TS_INFINITY),
          // Exactly batch `last`'s thunks are unsettled; all earlier ones have outcomes.
          unsettled: (await store.unsettled()).map(t => t.ts),
          thunks: (await store.thunkRange('crash', 0, 1, Number.MAX_SAFE_INTEGER)).length,
          previousOutcome: at > 1 ? await store.outcome(crashTs(at - 1, PER_BATCH - 1)) : undefined,
          lastOutcome: await store.outcome(crashTs(at, 0))
        }
        expect(found).toEqual({
          context,
          resumedAt: previous + 1,
          lostAcknowledged: false,
          beyondInFlight: false,
          values: keys.map(() => (last > 1 ? last : undefined)),
          unsettled: Array.from({ length: PER_BATCH }, (_, j) => crashTs(at, j)),
          thunks: last * PER_BATCH,
          previousOutcome: last > 1 ? { status: 'committed', value: last } : undefined,
          lastOutcome: undefined
        })
        previous = last
      } finally {
        await store.close()
      }
    }
  }, 30_000)
})
