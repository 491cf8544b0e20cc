import { z } from 'zod'
import { defineProcedures } from '../src/index.js'

/** Every account starts with this much; money only moves, so the total is fixed. */
export const INITIAL = 100
const acct = (name: string): string => `acct/${name}`

/** A bank used by the db tests: typed through `keys`, and one procedure typed through a zod schema. */
export const bank = defineProcedures({
  transfer: {
    keys: (a: { from: string, to: string, amount: number }) => ({ reads: [acct(a.from), acct(a.to)], writes: [acct(a.from), acct(a.to)] }),
    run (tx, a) {
      const from = (tx.get(acct(a.from)) as number | undefined) ?? INITIAL
      if (from < a.amount) return tx.abort('insufficient funds')
      tx.put(acct(a.from), from - a.amount)
      tx.put(acct(a.to), ((tx.get(acct(a.to)) as number | undefined) ?? INITIAL) + a.amount)
      return { from: from - a.amount }
    }
  },
  deposit: {
    args: z.object({ to: z.string().min(1), amount: z.number().int().positive() }),
    keys: a => ({ reads: [acct(a.to)], writes: [acct(a.to)] }),
    run (tx, a) {
      const v = ((tx.get(acct(a.to)) as number | undefined) ?? INITIAL) + a.amount
      tx.put(acct(a.to), v)
      return v
    }
  },
  /** Moves everything in `from` to `to`, planned from a read of `from` (reconnaissance). */
  sweep: {
    keys: (a: { from: string, to: string, expected: number }) => ({ reads: [acct(a.from), acct(a.to)], writes: [acct(a.from), acct(a.to)] }),
    run (tx, a) {
      const from = (tx.get(acct(a.from)) as number | undefined) ?? INITIAL
      if (from !== a.expected) return tx.abort('stale')
      tx.put(acct(a.from), 0)
      tx.put(acct(a.to), ((tx.get(acct(a.to)) as number | undefined) ?? INITIAL) + from)
      return from
    }
  },
  /** Closes an account: its key is deleted. */
  close: {
    keys: (a: { name: string }) => ({ reads: [], writes: [acct(a.name)] }),
    run (tx, a) {
      tx.delete(acct(a.name))
      return null
    }
  },
  /** A number drawn from its transaction's timestamp: what a replica guesses before the call has one is not what it gets. */
  draw: {
    keys: () => ({ reads: [], writes: [] }),
    run: tx => tx.random()
  },
  clock: {
    keys: () => ({ reads: [], writes: [] }),
    run: () => Date.now()
  }
})
