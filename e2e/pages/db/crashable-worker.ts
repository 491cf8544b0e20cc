import { serveWorker } from '@tideline/db/worker'
import { procedures } from './procedures.js'

// The normal database worker, plus a way for a test to make it fail the way
// a real bug would: an uncaught exception on the worker's event loop.
self.addEventListener('message', (e: MessageEvent) => {
  if (e.data === 'tideline-test-crash') setTimeout(() => { throw new Error('injected worker crash') }, 0)
})
serveWorker(procedures)
