// Compile-time tests (checked by `pnpm typecheck`): every @ts-expect-error
// below must be an error, or tsc fails with "unused @ts-expect-error".
import type { Database } from '../src/index.js'
import type { bank } from './bank.js'

export async function typeTests (db: Database<typeof bank>): Promise<void> {
  const r = await db.call('transfer', { from: 'a', to: 'b', amount: 5 })
  if (r.status === 'committed') {
    const left: number = r.value.from
    // @ts-expect-error the result of transfer has no `to`
    void r.value.to
    void left
  }
  const d = await db.call('deposit', { to: 'a', amount: 1 })
  if (d.status === 'committed') {
    const v: number = d.value
    void v
  }
  // @ts-expect-error no procedure named `transfr`
  await db.call('transfr', { from: 'a', to: 'b', amount: 5 })
  // @ts-expect-error amount must be a number
  await db.call('transfer', { from: 'a', to: 'b', amount: '5' })
  // @ts-expect-error `to` is missing
  await db.call('transfer', { from: 'a', amount: 5 })
  // @ts-expect-error the schema's output type: amount is a number
  await db.call('deposit', { to: 'a', amount: 'lots' })
  await db.reconnoiter({
    keys: ['acct/a'],
    plan: v => ({ procedure: 'sweep', args: { from: 'a', to: 'b', expected: v['acct/a'] as number } })
  })
  await db.reconnoiter({
    keys: ['acct/a'],
    // @ts-expect-error sweep needs `expected`
    plan: () => ({ procedure: 'sweep', args: { from: 'a', to: 'b' } })
  })
}
