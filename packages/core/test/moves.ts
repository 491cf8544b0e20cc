import type { ReadResult, Tx, TxnResult } from '../src/index.js'
import type { TestGroup } from './harness.js'

/** Transfers between accounts that start at 100, for the partitioned groups' tests. */

export const accounts = Array.from({ length: 8 }, (_, i) => `acct/${i}`)
export type Move = { from: string, to: string, n: number }

export const move = {
  keys: (m: Move) => ({ reads: [m.from, m.to], writes: [m.from, m.to] }),
  run: (tx: Tx, m: Move) => {
    const from = (tx.get(m.from) as number | undefined) ?? 100
    if (from < m.n) return tx.abort('insufficient funds')
    tx.put(m.from, from - m.n)
    tx.put(m.to, ((tx.get(m.to) as number | undefined) ?? 100) + m.n)
    return from - m.n
  }
}

/** Calls `move` through peer `via`; throws when it does not complete. */
export async function call (g: TestGroup, via: string, id: string, m: Move): Promise<TxnResult> {
  const out = await g.run(g.peer(via).submit({ clientTxnId: id, procedure: 'move', hash: g.hash('move'), args: m }), 5000)
  if (!out.done || !('value' in out)) throw new Error(`${id} did not complete: ${JSON.stringify(out)}`)
  return out.value
}

/** The accounts' total by a strict read through `via`. */
export async function total (g: TestGroup, via: string): Promise<number> {
  const out = await g.run(g.peer(via).read(accounts), 5000)
  if (!out.done || !('value' in out)) throw new Error(`read through ${via} did not complete: ${JSON.stringify(out)}`)
  const r: ReadResult = out.value
  return accounts.reduce((sum, a) => sum + ((r.values[a] as number | undefined) ?? 100), 0)
}
