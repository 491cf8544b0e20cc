import { createRegistry, type ProcedureMap, type Tx, type Value } from '@tideline/core'

/** Balance of an account nobody has written yet. */
export const INITIAL_BALANCE = 100

export const accountKey = (name: string): string => `acct/${name}`
export const listKey = (name: string): string => `l/${name}`

export interface TransferArgs { readonly from: string, readonly to: string, readonly amount: number }
export type ListMopArgs = { readonly f: 'r', readonly k: string } | { readonly f: 'append', readonly k: string, readonly v: number }
export interface ListTxnArgs { readonly mops: readonly ListMopArgs[] }

const balance = (tx: Tx, name: string): number => (tx.get(accountKey(name)) as number | undefined) ?? INITIAL_BALANCE

/** The workloads' procedures: bank transfers and Elle-style list-append transactions. */
export const workloadProcedures = {
  transfer: {
    keys: (a: TransferArgs) => ({ reads: [accountKey(a.from), accountKey(a.to)], writes: [accountKey(a.from), accountKey(a.to)] }),
    run (tx: Tx, a: TransferArgs): Value {
      const from = balance(tx, a.from)
      if (from < a.amount) return tx.abort('insufficient funds')
      const to = balance(tx, a.to)
      tx.put(accountKey(a.from), from - a.amount)
      tx.put(accountKey(a.to), to + a.amount)
      return { from: from - a.amount, to: to + a.amount }
    }
  },
  listTxn: {
    keys: (a: ListTxnArgs) => {
      const keys = [...new Set(a.mops.map(m => listKey(m.k)))]
      return { reads: keys, writes: [...new Set(a.mops.filter(m => m.f === 'append').map(m => listKey(m.k)))] }
    },
    run (tx: Tx, a: ListTxnArgs): Value {
      const lists = new Map<string, number[]>()
      const current = (k: string): number[] => lists.get(k) ?? ((tx.get(listKey(k)) as number[] | undefined) ?? [])
      const reads: number[][] = []
      for (const m of a.mops) {
        const cur = current(m.k)
        if (m.f === 'r') reads.push([...cur])
        else lists.set(m.k, [...cur, m.v])
      }
      for (const [k, list] of lists) tx.put(listKey(k), list)
      return reads
    }
  },
  /** Records who called (`tx.caller`, verified in a group of signed calls) under `note/<k>`. */
  signNote: {
    keys: (a: { k: string }) => ({ reads: [], writes: [`note/${a.k}`] }),
    run (tx: Tx, a: { k: string }): Value {
      const who = tx.caller?.id ?? null
      tx.put(`note/${a.k}`, who)
      return who
    }
  },
  /** A rule on the caller's role (its invite's claims, checked by every replica): only an admin sets `admin/<k>`. */
  adminNote: {
    keys: (a: { k: string }) => ({ reads: [], writes: [`admin/${a.k}`] }),
    run (tx: Tx, a: { k: string }): Value {
      const c = tx.caller
      const role = c?.role ?? 'no member every replica knows'
      if (c?.role !== 'admin') throw new Error(`only an admin may set admin/${a.k}; ${c?.name ?? c?.id ?? 'an unknown caller'} is a ${role}`)
      const by = { id: c.id, role: c.role, name: c.name ?? null }
      tx.put(`admin/${a.k}`, by)
      return by
    }
  }
} satisfies ProcedureMap

export const workloadRegistry = createRegistry(workloadProcedures)
