import { serveWorker } from '@tideline/db/worker'
import { procedures } from './procedures.js'

serveWorker(procedures)
