import { runLoad } from './partitions.js'
const spec = { count: 2, replicas: 3, depth: 2, partial: true }
const o = { rate: 60, seconds: 10, clients: 16, accounts: 10000 }
const r = await runLoad(o, 6, spec, 0)
console.log(JSON.stringify(r))
