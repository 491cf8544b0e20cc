import { describe, expect, it } from 'vitest'
import { sourceFingerprint } from '../src/index.js'

// The same procedure as tsx prints it (whitespace-minified) and as Vitest/Vite print it.
const TSX = 'run(tx,a){const from=balance(tx,a.from);if(from<a.amount)return tx.abort("insufficient funds");const to=balance(tx,a.to);tx.put(accountKey(a.from),from-a.amount);return{from:from-a.amount,to:to+a.amount}}'
const PRETTY = `run(tx, a) {
    // a comment
    const from = balance(tx, a.from);
    if (from < a.amount) return tx.abort('insufficient funds');
    const to = balance(tx, a.to);
    tx.put(accountKey(a.from), from - a.amount);
    return {
      from: from - a.amount,
      to: to + a.amount,
    };
  }`
const ARROW_TSX = 'a=>{const keys=[...new Set(a.mops.map(m=>listKey(m.k)))];return{reads:keys,writes:[...new Set(a.mops.filter(m=>m.f==="append").map(m=>listKey(m.k)))]}}'
const ARROW_PRETTY = `(a) => {
\t\t\tconst keys = [...new Set(a.mops.map((m) => listKey(m.k)))];
\t\t\treturn {
\t\t\t\treads: keys,
\t\t\t\twrites: [...new Set(a.mops.filter((m) => m.f === "append").map((m) => listKey(m.k)))]
\t\t\t};
\t\t}`

describe('sourceFingerprint', () => {
  it('is the same for one function printed by different toolchains', () => {
    expect(sourceFingerprint(PRETTY)).toBe(sourceFingerprint(TSX))
    expect(sourceFingerprint(ARROW_PRETTY)).toBe(sourceFingerprint(ARROW_TSX))
    expect(sourceFingerprint('x => x * 1_000')).toBe(sourceFingerprint('(x) => x * 1e3'))
    expect(sourceFingerprint("f('it\\'s')")).toBe(sourceFingerprint('f("it\'s")'))
    // esbuild (tsx) keeps a TypeScript cast's parentheses and wraps named arrows; oxc (Vite) does neither.
    expect(sourceFingerprint('const lists = new Map(); const current = (k) => lists.get(k) ?? tx.get(listKey(k)) ?? [];'))
      .toBe(sourceFingerprint('const lists=new Map;const current=__name(k=>lists.get(k)??(tx.get(listKey(k))??[]),"current");'))
    // Rolldown (Vite 8) prints `undefined` as `void 0`.
    expect(sourceFingerprint('if (tx.get(k) !== void 0) return')).toBe(sourceFingerprint('if(tx.get(k)!==undefined)return'))
    expect(sourceFingerprint('void 1')).not.toBe(sourceFingerprint('undefined'))
  })

  it('differs for any change in meaning', () => {
    const base = sourceFingerprint(TSX)
    for (const changed of [
      TSX.replace('from<a.amount', 'from<=a.amount'),
      TSX.replace('"insufficient funds"', '"insufficient fund"'),
      TSX.replace('to:to+a.amount', 'to:to+a.amount+1'),
      TSX.replace('return tx.abort', 'return  void tx.abort')
    ]) expect(sourceFingerprint(changed)).not.toBe(base)
    expect(sourceFingerprint('f(a+b)*c')).not.toBe(sourceFingerprint('f(a)+b*c'))
    expect(sourceFingerprint('typeof x')).not.toBe(sourceFingerprint('typeofx'))
    expect(sourceFingerprint('`a${b}c`')).not.toBe(sourceFingerprint('`a${b}d`'))
    expect(sourceFingerprint('`a ${b ?? "x"}`')).not.toBe(sourceFingerprint('`a ${b ?? "y"}`'))
    expect(sourceFingerprint('`a${b}`')).not.toBe(sourceFingerprint('`a ${b}`'))
  })

  it('is the same for template expressions however a printer spaces them, nested templates and braces included', () => {
    // Vitest (pretty) and tsx (whitespace-minified) print one procedure so.
    const pretty = 'throw new Error(`only ${c?.name ?? c?.id ?? "an unknown caller"} is ${c?.role === undefined ? "none" : `a ${c.role}`} {${ { a: 1 }.a }}`);'
    const tight = "throw new Error(`only ${c?.name??c?.id??'an unknown caller'} is ${c?.role===void 0?'none':`a ${c.role}`} {${{a:1}.a}}`)"
    expect(sourceFingerprint(tight)).toBe(sourceFingerprint(pretty))
  })
})
