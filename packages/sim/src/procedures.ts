// The simulator's workloads are the shared ones (also the relays' built-in procedures).
export {
  workloadProcedures as simProcedures, workloadRegistry as simRegistry, INITIAL_BALANCE, accountKey, listKey
} from '@tideline/workloads'
export type { ListMopArgs, ListTxnArgs, TransferArgs } from '@tideline/workloads'
