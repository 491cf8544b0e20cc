import type { StandardSchemaV1 } from '@standard-schema/spec'
import { InvalidArgumentError, createRegistry, type KeySets, type ProcedureRegistry, type Tx } from '@tideline/core'

/**
 * One named procedure: a pure function from arguments to declared key sets,
 * and a deterministic body. `args` (any Standard Schema validator: zod,
 * valibot, arktype …) is checked before a call is submitted; it is not part
 * of the procedure's hash (replicas evaluate what was submitted).
 */
export interface ProcedureDef<A, R> {
  readonly args?: StandardSchemaV1<unknown, A>
  keys(args: A): KeySets
  run(tx: Tx, args: A): R
  /** Names this version instead of the source fingerprint (for builds that rename identifiers). */
  readonly version?: string | number
  /** Put here by the build plugin (`@tideline/db/vite`): the source fingerprint as written, before minification. */
  readonly fingerprint?: string
}

type Defs<A> = { [K in keyof A]: ProcedureDef<A[K], unknown> }
type RunResult<D, K> = K extends keyof D ? D[K] extends { run: (...a: any[]) => infer R } ? R : never : never

/** The procedures a database runs, with their inferred argument and result types and the group registry. */
export type Procedures<A extends Record<string, unknown> = Record<string, any>, D = unknown> = {
  readonly [K in keyof A]: ProcedureDef<A[K], RunResult<D, K>>
}

/** The procedure names of a procedure set. */
export type ProcedureName<P> = keyof P & string
/** The argument type of procedure `K`. */
export type ArgsOf<P, K extends keyof P> = P[K] extends ProcedureDef<infer A, any> ? A : never
/** What procedure `K`'s `run` returns when it commits. */
export type ResultOf<P, K extends keyof P> = P[K] extends ProcedureDef<any, infer R> ? Exclude<R, void | undefined> | (undefined extends R ? null : never) | (void extends R ? null : never) : never

const registries = new WeakMap<object, ProcedureRegistry>()

/**
 * Declares a database's procedures. Argument types come from `keys`' parameter
 * (or from the `args` schema), result types from `run`; `db.call` checks both.
 *
 * ```ts
 * export const procedures = defineProcedures({
 *   transfer: {
 *     keys: (a: { from: string, to: string, amount: number }) => ({ reads: [`acct/${a.from}`, `acct/${a.to}`], writes: [`acct/${a.from}`, `acct/${a.to}`] }),
 *     run (tx, a) { … }
 *   }
 * })
 * ```
 */
export function defineProcedures<A extends Record<string, unknown>, D extends Defs<A>> (defs: D & Defs<A>): Procedures<A, D> {
  const procs = Object.freeze({ ...defs }) as unknown as Procedures<A, D>
  registries.set(procs, createRegistry(defs))
  return procs
}

/** The content-hashed registry of a procedure set (what a group's genesis pins). */
export function registryOf (procedures: object): ProcedureRegistry {
  let r = registries.get(procedures)
  if (r === undefined) {
    r = createRegistry(procedures as Record<string, ProcedureDef<any, any>>)
    registries.set(procedures, r)
  }
  return r
}

/** Runs a procedure's argument schema, if it has one; returns the (possibly transformed) value. */
export async function checkArgs (name: string, def: ProcedureDef<unknown, unknown>, args: unknown): Promise<unknown> {
  const schema = def.args
  if (schema === undefined) return args
  const result = await schema['~standard'].validate(args)
  if (result.issues !== undefined) {
    const text = result.issues.map(i => {
      const path = i.path?.map(p => typeof p === 'object' ? String(p.key) : String(p)).join('.') ?? ''
      return path === '' ? i.message : `${path}: ${i.message}`
    }).join('; ')
    throw new InvalidArgumentError(`arguments of ${name} are invalid: ${text}`)
  }
  return result.value
}
