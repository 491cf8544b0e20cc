import { procedureFingerprint } from '@tideline/core'

/**
 * The Vite (Rolldown) plugin that keeps procedure identity through a
 * minifier. A group pins each procedure by a fingerprint of the source of its
 * `keys` and `run`; relays compute it from the functions' text at run time,
 * but a minified bundle's functions read differently (renamed locals). This
 * plugin computes the same fingerprint from each procedure's source in every
 * module that calls `defineProcedures({ … })`, after TypeScript is stripped
 * and before anything is bundled or minified, and writes it into the
 * procedure (`fingerprint: "…"`), which the registry then uses. No hand-kept
 * `version` is needed; a procedure whose code differs from the relays' is
 * still refused.
 *
 * ```ts
 * import { tidelineProcedures } from '@tideline/db/vite'
 * export default { plugins: [tidelineProcedures()], worker: { plugins: () => [tidelineProcedures()] } }
 * ```
 */
export function tidelineProcedures (): VitePlugin {
  return {
    name: 'tideline-procedures',
    transform (code, id) {
      if (!code.includes('defineProcedures') || id.includes('/node_modules/') || id.startsWith('\0')) return null
      const out = fingerprintProcedures(code, this.parse(code))
      return out === code ? null : { code: out, map: null }
    }
  }
}

/** The part of a Vite/Rollup/Rolldown plugin this one uses (no dependency on Vite's types). */
export interface VitePlugin {
  readonly name: string
  transform(this: { parse(code: string): unknown }, code: string, id: string): { code: string, map: null } | null
}

interface Node {
  readonly type: string
  readonly start: number
  readonly end: number
  readonly [field: string]: unknown
}

const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && typeof (x as Node).type === 'string'

/** Every node of an ESTree program, depth first. */
function * walk (node: unknown): Generator<Node> {
  if (Array.isArray(node)) {
    for (const n of node) yield * walk(n)
    return
  }
  if (!isNode(node)) return
  yield node
  for (const [k, v] of Object.entries(node)) if (k !== 'type' && typeof v === 'object' && v !== null) yield * walk(v)
}

const keyName = (p: Node): string | undefined => {
  const key = p.key as Node | undefined
  if (key === undefined) return undefined
  if (key.type === 'Identifier') return key.name as string
  if (key.type === 'Literal' && typeof key.value === 'string') return key.value
  return undefined
}

/**
 * Adds `fingerprint: "…"` to each procedure of every `defineProcedures({ … })`
 * call in `code` (an ESTree program with source offsets). A procedure's
 * `keys` and `run` text is what `String(fn)` gives at run time: a method's
 * whole definition, otherwise the function expression.
 */
export function fingerprintProcedures (code: string, program: unknown): string {
  const inserts: Array<{ at: number, text: string }> = []
  for (const call of walk(program)) {
    if (call.type !== 'CallExpression') continue
    const callee = call.callee as Node
    const named = callee.type === 'Identifier' ? callee.name : callee.type === 'MemberExpression' ? (callee.property as Node).name : undefined
    const defs = (call.arguments as Node[])[0]
    if (named !== 'defineProcedures' || defs?.type !== 'ObjectExpression') continue
    for (const proc of defs.properties as Node[]) {
      const body = proc.value as Node | undefined
      if (proc.type !== 'Property' || body?.type !== 'ObjectExpression') continue
      const members = new Map<string, Node>()
      for (const m of body.properties as Node[]) {
        const name = m.type === 'Property' ? keyName(m) : undefined
        if (name !== undefined) members.set(name, m)
      }
      const source = (name: string): string | undefined => {
        const m = members.get(name)
        if (m === undefined) return undefined
        const fn = m.value as Node
        if (m.method === true) return code.slice(m.start, m.end)
        if (fn.type === 'ArrowFunctionExpression' || fn.type === 'FunctionExpression') return code.slice(fn.start, fn.end)
        return undefined
      }
      const keys = source('keys')
      const run = source('run')
      // A procedure that names a version, already has a fingerprint, or whose functions are not written here keeps the run-time rule.
      if (keys === undefined || run === undefined || members.has('version') || members.has('fingerprint')) continue
      inserts.push({ at: body.start + 1, text: ` fingerprint: ${JSON.stringify(procedureFingerprint(keys, run))},` })
    }
  }
  let out = code
  for (const ins of inserts.sort((a, b) => b.at - a.at)) out = out.slice(0, ins.at) + ins.text + out.slice(ins.at)
  return out
}
