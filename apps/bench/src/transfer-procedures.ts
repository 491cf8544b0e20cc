import type { Tx } from '@tideline/core'

/** 2-key transfers between numbered accounts that start at 1,000. */
export const transferProcedures = {
  transfer: {
    keys: (a: { from: number, to: number }) => ({ reads: [`acct/${a.from}`, `acct/${a.to}`], writes: [`acct/${a.from}`, `acct/${a.to}`] }),
    run (tx: Tx, a: { from: number, to: number }) {
      const from = (tx.get(`acct/${a.from}`) as number | undefined) ?? 1000
      const to = (tx.get(`acct/${a.to}`) as number | undefined) ?? 1000
      if (from < 1) return tx.abort('insufficient funds')
      tx.put(`acct/${a.from}`, from - 1)
      tx.put(`acct/${a.to}`, to + 1)
      return null
    }
  }
}
