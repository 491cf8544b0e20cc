import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'

/** File in a data directory holding the relay's Ed25519 key (libp2p protobuf, base64). */
export const IDENTITY_FILE = 'identity.key'

/**
 * Loads the key kept in `dir`, or creates one there (written atomically,
 * readable by the owner only), so a relay keeps its peer id across restarts.
 */
export async function loadOrCreateIdentity (dir: string): Promise<{ key: PrivateKey, id: string, created: boolean }> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, IDENTITY_FILE)
  let text: string | undefined
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (text !== undefined) {
    const key = privateKeyFromProtobuf(Buffer.from(text.trim(), 'base64'))
    return { key, id: peerIdFromPrivateKey(key).toString(), created: false }
  }
  const key = await generateKeyPair('Ed25519')
  const tmp = `${file}.tmp`
  await writeFile(tmp, `${Buffer.from(privateKeyToProtobuf(key)).toString('base64')}\n`, { mode: 0o600 })
  await rename(tmp, file)
  return { key, id: peerIdFromPrivateKey(key).toString(), created: true }
}
