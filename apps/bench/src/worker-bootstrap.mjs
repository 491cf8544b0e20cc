// worker_threads cannot start a .ts entry under tsx on Node 20: register tsx first, then import it.
import { workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
await import(workerData.entry)
