/** Bits in a RecordFilter: 2 MiB, about 2% false positives at two million records. */
const BITS = 1 << 24
const HASHES = 4

/**
 * Which clientTxnIds may have an exactly-once record: a Bloom filter over
 * every id this store wrote or found when it opened. Nearly every id an
 * evaluation asks about is new, and `has` answers false for it without a
 * store read; a true may be wrong (the store is then read), a false never is.
 * It cannot forget an id: when GC or a snapshot import removes records, the
 * store builds a new filter from the ids left.
 */
export class RecordFilter {
  private readonly bits = new Uint32Array(BITS / 32)

  add (id: string): void {
    const [a, b] = hashes(id)
    for (let i = 0; i < HASHES; i++) {
      const bit = (a + i * b) & (BITS - 1)
      this.bits[bit >>> 5] = (this.bits[bit >>> 5] as number) | (1 << (bit & 31))
    }
  }

  /** Every id `other` holds, added. */
  merge (other: RecordFilter): void {
    for (let i = 0; i < this.bits.length; i++) this.bits[i] = (this.bits[i] as number) | (other.bits[i] as number)
  }

  has (id: string): boolean {
    const [a, b] = hashes(id)
    for (let i = 0; i < HASHES; i++) {
      const bit = (a + i * b) & (BITS - 1)
      if (((this.bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return false
    }
    return true
  }
}

/** Two 32-bit FNV-1a hashes of the UTF-16 code units (different offset bases), for double hashing; the second is odd. */
function hashes (s: string): [number, number] {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193)
  }
  b = Math.imul(b ^ (b >>> 15), 0x2c1b3c6d)
  return [a >>> 0, (b | 1) >>> 0]
}
