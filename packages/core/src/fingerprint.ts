/**
 * A procedure's code fingerprint that survives re-formatting: the same
 * function compiled by tsx (whitespace-minified), Vitest or Vite (pretty
 * printed) yields the same text here. It keeps every token that carries
 * meaning and drops what printers change freely:
 *
 * - whitespace and comments (a single space stays between two word tokens);
 * - semicolons (printers insert or drop them before `}`);
 * - string quotes (`'a'` and `"a"` are one token);
 * - numeric spelling (`1_000`, `1e3`, `1000.0` are one number);
 * - trailing commas, grouping parentheses (printers add or drop them
 *   around `??`, arrow parameters and TypeScript casts), `()` after `new X`,
 *   esbuild's `__name(fn, "name")` wrappers, and `void 0` for `undefined`.
 *
 * So `(a + b) * c` and `a + b * c` fingerprint alike: a fingerprint guards
 * against replicas running different code by accident, not against an
 * adversary, and precedence-only edits are the price of toolchain independence.
 * It does not see through renaming minifiers (mangled locals are a different
 * text): a bundled app runs `@tideline/db/vite`, which fingerprints the
 * source before minification, or a procedure names an explicit `version`.
 */
export function sourceFingerprint (src: string): string {
  const out: string[] = []
  let i = 0
  const n = src.length
  const emit = (tok: string): void => { out.push(tok) }
  while (i < n) {
    const c = src[i] as string
    const next = src[i + 1]
    if (/\s/.test(c)) { i++; continue }
    if (c === '/' && next === '/') { while (i < n && src[i] !== '\n') i++; continue }
    if (c === '/' && next === '*') { const end = src.indexOf('*/', i + 2); i = end < 0 ? n : end + 2; continue }
    if (c === ';') { i++; continue }
    if (c === '"' || c === "'") {
      let j = i + 1
      let body = ''
      while (j < n && src[j] !== c) {
        if (src[j] === '\\' && (src[j + 1] === '"' || src[j + 1] === "'")) { body += src[j + 1]; j += 2; continue }
        if (src[j] === '\\') { body += `${src[j]}${src[j + 1] ?? ''}`; j += 2; continue }
        body += src[j]
        j++
      }
      emit(`"${body.replaceAll('"', '\\"')}"`)
      i = j + 1
      continue
    }
    if (c === '`') {
      const t = template(src, i)
      emit(t.text)
      i = t.end
      continue
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(next ?? ''))) {
      const m = /^(?:0[xXoObB][0-9a-fA-F_]+n?|(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][+-]?[0-9_]+)?n?)/.exec(src.slice(i)) as RegExpExecArray
      const raw = m[0]
      const value = raw.endsWith('n') ? raw : String(Number(raw.replaceAll('_', '')))
      // Bundlers (Rolldown, terser) print `undefined` as `void 0`.
      if (value === '0' && out[out.length - 1] === 'void') out[out.length - 1] = 'undefined'
      else emit(value)
      i += raw.length
      continue
    }
    if (isWord(c)) {
      let j = i
      while (j < n && isWord(src[j])) j++
      emit(src.slice(i, j))
      i = j
      continue
    }
    emit(c)
    i++
  }
  return join(dropGrouping(out))
    .replace(/,([}\])])/g, '$1')
}

const isWord = (c: string | undefined): boolean => c !== undefined && /[\w$]/.test(c)

/**
 * The template literal starting at `src[start]` (a backtick): its text kept
 * verbatim (printers leave it alone), each `${…}` expression fingerprinted
 * as code (printers space it as they like), nested templates included.
 * Returns the fingerprinted literal and the index after its closing backtick.
 */
function template (src: string, start: number): { text: string, end: number } {
  let text = '`'
  let j = start + 1
  while (j < src.length && src[j] !== '`') {
    if (src[j] === '\\') { text += src.slice(j, j + 2); j += 2; continue }
    if (src[j] === '$' && src[j + 1] === '{') {
      const end = expressionEnd(src, j + 2)
      text += `\${${sourceFingerprint(src.slice(j + 2, end))}}`
      j = end + 1
      continue
    }
    text += src[j]
    j++
  }
  return { text: `${text}\``, end: j + 1 }
}

/** The index of the `}` that closes a template expression starting at `from` (braces, strings and templates inside skipped). */
function expressionEnd (src: string, from: number): number {
  let depth = 0
  let j = from
  while (j < src.length) {
    const c = src[j] as string
    if (c === '`') { j = template(src, j).end; continue }
    if (c === '"' || c === "'") {
      j++
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1
      j++
      continue
    }
    if (c === '{') depth++
    if (c === '}') {
      if (depth === 0) return j
      depth--
    }
    j++
  }
  return j
}

/** Whether `out` ends in `new X` or `new a.b.X` (so a following `()` is optional). */
function afterNew (out: readonly string[]): boolean {
  let j = out.length - 1
  while (j >= 0 && isWord((out[j] as string)[0])) {
    if (out[j - 1] === 'new') return true
    if (out[j - 1] !== '.') return false
    j -= 2
  }
  return false
}

function join (tokens: readonly string[]): string {
  let s = ''
  for (const t of tokens) s += (isWord(s[s.length - 1]) && isWord(t[0]) ? ' ' : '') + t
  return s
}

/**
 * Drops grouping parentheses (a `(` not after a word, `)` or `]`, which
 * would make it a call or a statement head) and `__name(fn, "x")` wrappers.
 */
function dropGrouping (tokens: readonly string[]): string[] {
  const out: string[] = []
  const stack: Array<'keep' | 'drop' | 'name'> = []
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string
    if (t === '__name' && tokens[i + 1] === '(') {
      stack.push('name')
      i++
      continue
    }
    if (t === '(' && tokens[i + 1] === ')' && afterNew(out)) {
      i++
      continue
    }
    if (t === '(') {
      const prev = out[out.length - 1]
      const call = prev !== undefined && (isWord(prev[prev.length - 1]) || prev === ')' || prev === ']')
      stack.push(call ? 'keep' : 'drop')
      if (call) out.push(t)
      continue
    }
    if (t === ')') {
      const kind = stack.pop() ?? 'keep'
      if (kind === 'name' && out[out.length - 2] === ',' && (out[out.length - 1] ?? '').startsWith('"')) out.splice(-2, 2)
      if (kind === 'keep') out.push(t)
      continue
    }
    out.push(t)
  }
  return out
}
