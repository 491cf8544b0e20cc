import { runCase } from './cases.js'

// Runs compliance cases inside a module Web Worker, one message per case.
self.addEventListener('message', (event: MessageEvent<{ id: number, name: string }>) => {
  const { id, name } = event.data
  void runCase(name).then(result => { self.postMessage({ id, result }) })
})
