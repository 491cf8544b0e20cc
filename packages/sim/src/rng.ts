/**
 * A small seeded PRNG (a 128-bit state xorshift variant). Every random choice
 * of a simulation comes from one of these, so a seed replays exactly.
 */
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number) {
    this.a = (seed ^ 0xdeadbeef) >>> 0
    this.b = (Math.imul(seed, 0x9e3779b1) ^ 0x41c6ce57) >>> 0
    this.c = (seed + 0x6a09e667) >>> 0
    this.d = 0x3c6ef372
    for (let i = 0; i < 16; i++) this.next()
  }

  /** Uniform in [0, 1). */
  next (): number {
    const t = this.a ^ (this.a << 11)
    this.a = this.b
    this.b = this.c
    this.c = this.d
    this.d = (this.d ^ (this.d >>> 19) ^ (t ^ (t >>> 8))) >>> 0
    return this.d / 4294967296
  }

  /** Integer in [lo, hi]. */
  int (lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  chance (p: number): boolean {
    return this.next() < p
  }

  pick<T> (xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('pick from an empty list')
    return xs[Math.floor(this.next() * xs.length)] as T
  }

  /** A child generator, so adding draws in one place does not shift another's. */
  fork (): Rng {
    return new Rng(Math.floor(this.next() * 4294967296))
  }
}
