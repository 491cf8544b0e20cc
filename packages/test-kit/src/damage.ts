import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'

/** How a record on disk goes bad (as core's DamageKind). */
export type DiskDamage = 'bit-flip' | 'torn' | 'misdirected'

/**
 * Damages one entry of a stopped relay's LevelDB store in its files, as a
 * disk would: a bit flipped, the entry cut short, or another entry's bytes
 * (its check included) written under this key. `what` picks the kind of
 * record: a value (`l!`, or `L!` in the other generation), an exactly-once
 * record (`x!`/`X!`) or a batch (`b!`); the entry is drawn at random among
 * them. Returns the damaged key as text, or undefined when there is none.
 */
export async function damageRelayStore (dataDir: string, what: 'value' | 'record' | 'batch', kind: DiskDamage): Promise<string | undefined> {
  const db = new ClassicLevel<Buffer, Buffer>(join(dataDir, 'store'), { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  try {
    // The generation record: its 4-byte check, then '1' when values and records live under L! and X!.
    const other = (await db.get(Buffer.from('g!')))?.subarray(4).toString() === '1'
    const tag = what === 'batch' ? 'b' : what === 'value' ? (other ? 'L' : 'l') : (other ? 'X' : 'x')
    const entries = await db.iterator({ gte: Buffer.from(`${tag}!`), lt: Buffer.from(`${tag}"`) }).all()
    if (entries.length === 0) return undefined
    const i = Math.floor(Math.random() * entries.length)
    const [key, value] = entries[i] as [Buffer, Buffer]
    let bad: Buffer
    if (kind === 'bit-flip') {
      bad = Buffer.from(value)
      const at = 4 + Math.floor(Math.random() * Math.max(1, bad.length - 4))
      bad[at] = (bad[at] as number) ^ (1 << Math.floor(Math.random() * 8))
    } else if (kind === 'torn') {
      bad = value.subarray(0, Math.max(1, Math.floor(value.length / 2)))
    } else {
      const donor = entries[(i + 1) % entries.length] as [Buffer, Buffer]
      if (donor[0].equals(key)) return undefined
      bad = donor[1]
    }
    await db.put(key, bad, { sync: true })
    return key.toString('latin1').replace(/[^\x20-\x7e]/g, '.')
  } finally {
    await db.close()
  }
}
