import { serveWorker } from '@tideline/db/worker'
import { procedures } from './procedures.js'

// The tab's replica (IndexedDB) and the evaluation of procedures.
serveWorker(procedures)
