import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { storeComplianceTests } from '@tideline/core/store-compliance'
import type { Store } from '@tideline/core'
import { LevelStore } from '../src/index.js'

storeComplianceTests('LevelStore', {
  async open () {
    const path = await mkdtemp(join(tmpdir(), 'tideline-level-'))
    let current: Store = await LevelStore.open({ path })
    return {
      store: current,
      reopen: async () => {
        await current.close()
        current = await LevelStore.open({ path })
        return current
      },
      cleanup: async () => {
        await current.close()
        await rm(path, { recursive: true, force: true })
      }
    }
  }
})
