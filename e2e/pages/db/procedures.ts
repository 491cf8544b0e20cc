import { defineProcedures } from '@tideline/db'

/** Accounts in the browser tests; each starts with INITIAL, money only moves. */
export const ACCOUNTS = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7']
export const INITIAL = 100

// Shared by the page, its worker and the relay processes (`--procedures`).
export const procedures = defineProcedures({
  transfer: {
    keys: (a: { from: string, to: string, amount: number }) => ({ reads: [`acct/${a.from}`, `acct/${a.to}`], writes: [`acct/${a.from}`, `acct/${a.to}`] }),
    run (tx, a) {
      const from = (tx.get(`acct/${a.from}`) as number | undefined) ?? 100
      if (from < a.amount) return tx.abort('insufficient funds')
      tx.put(`acct/${a.from}`, from - a.amount)
      tx.put(`acct/${a.to}`, ((tx.get(`acct/${a.to}`) as number | undefined) ?? 100) + a.amount)
      return from - a.amount
    }
  },
  /** A blind write of one value (the join benchmark builds its history with it). */
  put: {
    keys: (a: { k: string, v: string }) => ({ reads: [], writes: [`kv/${a.k}`] }),
    run (tx, a) {
      tx.put(`kv/${a.k}`, a.v)
      return null
    }
  }
})
