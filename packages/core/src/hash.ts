/**
 * A fast 64-bit non-cryptographic hash (two FNV-style lanes with a murmur-style
 * finaliser). Used for digests that honest replicas compare and for peer tags;
 * not for anything an attacker must not forge.
 */
function avalanche (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function hex8 (n: number): string {
  return n.toString(16).padStart(8, '0')
}

export function hash64 (input: string, seed = 0): string {
  const [hi, lo] = hash64Lanes(input, seed)
  return hex8(hi) + hex8(lo)
}

/** hash64 as its two 32-bit lanes (for sums of hashes, with no hex text in between). */
export function hash64Lanes (input: string, seed = 0): [number, number] {
  let a = (0x811c9dc5 ^ seed) >>> 0
  let b = (0x9e3779b9 ^ Math.imul(seed, 0x27d4eb2f)) >>> 0
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
  }
  const hi = avalanche((a ^ input.length) >>> 0)
  const lo = avalanche((b + hi) >>> 0)
  return [hi, lo]
}

/** The same two-lane hash, fed piece by piece, so digests need not build strings. */
export class Hasher {
  private a: number
  private b: number
  private n = 0

  constructor (seed = 0) {
    this.a = (0x811c9dc5 ^ seed) >>> 0
    this.b = (0x9e3779b9 ^ Math.imul(seed, 0x27d4eb2f)) >>> 0
  }

  /** The running state, to persist and `restore` (the digest alone cannot be continued). */
  get state (): [number, number, number] {
    return [this.a, this.b, this.n]
  }

  static restore (state: readonly [number, number, number]): Hasher {
    const h = new Hasher()
    h.a = state[0]
    h.b = state[1]
    h.n = state[2]
    return h
  }

  text (s: string): this {
    let a = this.a
    let b = this.b
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15)
    }
    // A separator, so ("ab","c") and ("a","bc") differ.
    this.a = Math.imul(a ^ 0x1f, 0x01000193)
    this.b = Math.imul(b ^ 0x1f, 0x5bd1e995) ^ (b >>> 15)
    this.n += s.length + 1
    return this
  }

  digest (): string {
    const hi = avalanche((this.a ^ this.n) >>> 0)
    const lo = avalanche((this.b + hi) >>> 0)
    return hex8(hi) + hex8(lo)
  }
}
