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
        const keys = Array.from({ length: PER_BATCH }, (_, j) => `k${j}`)
        const outcomesOf = async (seq: number): Promise<unknown[]> =>
          seq < 1 ? [] : await Promise.all(Array.from({ length: PER_BATCH }, async (_, j) => await store.outcome(crashTs(seq, j))))
        const { batches: held } = await store.batchRange('crash', 0, 1, Infinity)
        // What the store holds, next to what write `last` (whole, and nothing after it) implies.
        // One comparison, with the round's context in the diff when it fails.
        const found = {
          context,
          resumedAt: run.start,
          // Every acknowledged write survived; at most the one in flight landed beyond it.
          lostAcknowledged: last < run.lastDone,
          beyondInFlight: last > run.lastDone + 1,
          // The values come from the same write as the counter: none older, none newer.
          values: await store.latestValues(keys, TS_INFINITY),
          // Batches 1 to `last`, each whole: all of its thunks, in order.
          batches: held.map(b => b.seq),
          torn: held.filter(b => b.thunks.length !== PER_BATCH || b.thunks.some((t, j) => t.ts !== crashTs(b.seq, j) || t.index !== j)).map(b => b.seq),
          // Batch `last`'s thunks have no outcome yet; batch `last - 1`'s were settled by write `last`.
          previousOutcomes: await outcomesOf(last - 1),
          lastOutcomes: await outcomesOf(last)
        }
        expect(found).toEqual({
          context,
          resumedAt: previous + 1,
          lostAcknowledged: false,
          beyondInFlight: false,
          values: keys.map(() => (last > 1 ? last : undefined)),
          batches: Array.from({ length: Math.max(last, 0) }, (_, i) => i + 1),
          torn: [],
          previousOutcomes: last > 1 ? keys.map(() => ({ status: 'committed', value: last })) : [],
          lastOutcomes: last >= 1 ? keys.map(() => undefined) : []
        })
        previous = last
      } finally {
        await store.close()
      }
    }
  }, 30_000)
})
