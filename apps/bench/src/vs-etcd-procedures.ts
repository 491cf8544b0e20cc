import type { ProcedureMap, Tx, Value } from '@tideline/core'

/**
 * The procedures of `pnpm bench vs-etcd`, loaded by the relays with
 * `--procedures`. `transfer` is the sim's (accounts start at 100, an
 * overdraft aborts); `put` writes one key blindly, like an etcd put;
 * `append` adds one element to a list and returns its new length.
 */
export interface PutArgs { readonly k: string, readonly v: string }
export interface TransferArgs { readonly from: string, readonly to: string, readonly amount: number }
export interface AppendArgs { readonly k: string, readonly v: string }

/** An unwritten account's balance (the etcd side uses it too; `run` spells it out so its hash covers it). */
export const INITIAL_BALANCE = 100

export const procedures = {
  put: {
    keys: (a: PutArgs) => ({ reads: [], writes: [a.k] }),
    run (tx: Tx, a: PutArgs): Value {
      tx.put(a.k, a.v)
      return null
    }
  },
  transfer: {
    keys: (a: TransferArgs) => ({ reads: [a.from, a.to], writes: [a.from, a.to] }),
    run (tx: Tx, a: TransferArgs): Value {
      const from = (tx.get(a.from) as number | undefined) ?? 100
      if (from < a.amount) return tx.abort('insufficient funds')
      const to = (tx.get(a.to) as number | undefined) ?? 100
      tx.put(a.from, from - a.amount)
      tx.put(a.to, to + a.amount)
      return null
    }
  },
  append: {
    keys: (a: AppendArgs) => ({ reads: [a.k], writes: [a.k] }),
    run (tx: Tx, a: AppendArgs): Value {
      const list = [...((tx.get(a.k) as string[] | undefined) ?? []), a.v]
      tx.put(a.k, list)
      return list.length
    }
  }
} satisfies ProcedureMap
