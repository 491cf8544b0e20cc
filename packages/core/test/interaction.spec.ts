import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { peerStatus, type ReadConsistency, type Tx } from '../src/index.js'
import { ScriptGroup } from './interaction/driver.js'

/**
 * Interaction scripts (etcd raft's datadriven style): each file in
 * `interaction/testdata` is a list of commands, each followed by the effects
 * it caused, as `step` returned them. A change in the protocol's behaviour
 * shows up as a diff. `UPDATE_SCRIPTS=1` rewrites the expected text (read
 * the diff before committing it).
 */

const procedures = {
  put: {
    keys: (a: { k: string }) => ({ reads: [], writes: [a.k] }),
    run: (tx: Tx, a: { k: string, v: number }) => { tx.put(a.k, a.v); return null }
  },
  inc: {
    keys: (a: { k: string }) => ({ reads: [a.k], writes: [a.k] }),
    run: (tx: Tx, a: { k: string }) => { const v = ((tx.get(a.k) as number | undefined) ?? 0) + 1; tx.put(a.k, v); return v }
  }
}

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'interaction', 'testdata')

interface Block { readonly command: string, readonly expected: string }

function parse (text: string): { header: string, blocks: Block[] } {
  const lines = text.split('\n')
  const header: string[] = []
  const blocks: Block[] = []
  let i = 0
  while (i < lines.length && (lines[i]?.startsWith('#') === true || lines[i] === '')) header.push(lines[i++] as string)
  while (i < lines.length) {
    const command = lines[i++] as string
    if (command.trim() === '' || command.startsWith('#')) continue
    if (lines[i++] !== '----') throw new Error(`expected ---- after "${command}"`)
    const out: string[] = []
    while (i < lines.length && lines[i] !== '----') out.push(lines[i++] as string)
    i++
    blocks.push({ command, expected: out.join('\n') })
  }
  return { header: header.join('\n'), blocks }
}

function args (words: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const w of words) {
    const at = w.indexOf('=')
    if (at > 0) out[w.slice(0, at)] = w.slice(at + 1)
  }
  return out
}

function run (g: ScriptGroup | undefined, command: string): { group: ScriptGroup, output: string } {
  const [verb, ...rest] = command.split(' ')
  const a = args(rest)
  if (verb === 'group') {
    const group = new ScriptGroup(procedures, (a.voters ?? '').split(','), a.observers === undefined ? [] : a.observers.split(','))
    return { group, output: group.take().join('\n') }
  }
  if (g === undefined) throw new Error('the first command must be `group`')
  const positional = rest.filter(w => !w.includes('='))
  const peer = positional[0] ?? ''
  switch (verb) {
    case 'tick':
      g.now += Number(a.ms ?? 5)
      for (const p of peer === 'all' ? (a.peers ?? 'v0,v1,v2').split(',') : [peer]) g.input(p, { t: 'tick' })
      break
    case 'advance': g.now += Number(a.ms ?? 5); break
    case 'submit':
      g.input(peer, { t: 'submit', call: Number(a.call), req: { clientTxnId: a.id ?? `c${a.call}`, procedure: positional[1] ?? '', hash: g.hash(positional[1] ?? ''), args: JSON.parse(a.args ?? '{}') } })
      break
    case 'read': g.input(peer, { t: 'read', call: Number(a.call), keys: (a.keys ?? '').split(','), consistency: (a.consistency ?? 'strict') as ReadConsistency }); break
    case 'propose': g.input(peer, { t: 'request-epoch-change' }); break
    case 'deliver': g.deliver({ ...(a.from === undefined ? {} : { from: a.from }), ...(a.to === undefined ? {} : { to: a.to }) }); break
    case 'drop': return { group: g, output: `dropped ${g.drop({ ...(a.from === undefined ? {} : { from: a.from }), ...(a.to === undefined ? {} : { to: a.to }) })}` }
    case 'crash': g.crash(peer); break
    case 'restart': g.restart(peer); break
    case 'status': {
      const st = peerStatus(g.state(peer))
      return { group: g, output: `${peer}: ${st.status} e${st.epoch} voters ${st.voters.join(',')} watermark ${g.ts(st.watermark)} frontier ${g.ts(st.frontier)} evaluated ${st.evaluated} inflight ${st.inflight} unevaluated ${st.unevaluated}` }
    }
    default: throw new Error(`unknown command ${verb ?? ''}`)
  }
  g.settle()
  return { group: g, output: g.take().join('\n') }
}

describe('interaction scripts', () => {
  for (const file of readdirSync(dir).filter(f => f.endsWith('.txt')).sort()) {
    it(`${file}`, () => {
      const path = join(dir, file)
      const { header, blocks } = parse(readFileSync(path, 'utf8'))
      let g: ScriptGroup | undefined
      const actual: Block[] = []
      for (const b of blocks) {
        const r = run(g, b.command)
        g = r.group
        actual.push({ command: b.command, expected: r.output })
      }
      if (process.env.UPDATE_SCRIPTS === '1') {
        writeFileSync(path, `${header}\n${actual.map(b => `${b.command}\n----\n${b.expected}${b.expected === '' ? '' : '\n'}----\n`).join('\n')}`)
        return
      }
      for (let i = 0; i < blocks.length; i++) expect(actual[i]?.expected, `${file}: ${blocks[i]?.command}`).toBe(blocks[i]?.expected)
    })
  }
})
