import { createContext, createElement, useContext, type ReactNode } from 'react'
import type { Database } from '@tideline/db'

/** Any open database, whatever its procedures. */
export type AnyDatabase = Database<any>

const DatabaseContext = createContext<AnyDatabase | undefined>(undefined)

/** Makes `db` the database the hooks below it use. */
export function TidelineProvider (props: { readonly db: AnyDatabase, readonly children?: ReactNode }): ReactNode {
  return createElement(DatabaseContext.Provider, { value: props.db }, props.children)
}

/** The database a hook uses: the one given, else the nearest TidelineProvider's (a TypeError without either). */
export function useDatabase<D extends AnyDatabase = AnyDatabase> (db?: D): D {
  const provided = useContext(DatabaseContext)
  const found = db ?? provided
  if (found === undefined) throw new TypeError('no Tideline database: pass { db } or render inside <TidelineProvider db={…}>')
  return found as D
}
