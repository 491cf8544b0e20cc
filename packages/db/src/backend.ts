import { wrap, releaseProxy, type Remote } from 'comlink'
import { WorkerFailedError, type AppliedRun, type Cursor, type Outcome, type RunApplier, type Store, type StoreBatch, type StoreSnapshot, type Thunk, type Timestamp, type Value } from '@tideline/core'
import type { WorkerApi } from './worker.js'

/**
 * The page's side of a database worker: a `Store` and a `RunApplier` whose
 * every call goes to the worker. If the worker dies (an uncaught error, a
 * message that cannot be cloned) every pending and later call rejects with
 * WorkerFailedError instead of hanging, and `onFailure` listeners hear it.
 */
export class WorkerBackend implements Store {
  readonly applier: RunApplier
  private readonly worker: Worker
  private readonly remote: Remote<WorkerApi>
  private readonly dead: Promise<never>
  private failure: Error | undefined
  private readonly failureListeners = new Set<(err: Error) => void>()
  private closed = false

  constructor (worker: Worker) {
    this.worker = worker
    this.remote = wrap<WorkerApi>(worker)
    this.dead = new Promise<never>((_resolve, reject) => {
      const die = (err: Error): void => {
        if (this.failure !== undefined) return
        this.failure = err
        reject(err)
        for (const l of this.failureListeners) l(err)
      }
      worker.addEventListener('error', e => {
        e.preventDefault()
        die(new WorkerFailedError(`the database worker failed: ${e.message === '' ? 'error' : e.message}`))
      })
      worker.addEventListener('messageerror', () => { die(new WorkerFailedError('the database worker sent a message that could not be decoded')) })
    })
    this.dead.catch(() => {})
    this.applier = (run: readonly Thunk[], base: Cursor): Promise<AppliedRun> => this.call(this.remote.applyRun(run, base))
  }

  /** The worker's failure, if it failed. */
  get failed (): Error | undefined {
    return this.failure
  }

  onFailure (listener: (err: Error) => void): void {
    this.failureListeners.add(listener)
  }

  private async call<T> (p: Promise<T>): Promise<T> {
    if (this.failure !== undefined) throw this.failure
    return await Promise.race([p, this.dead])
  }

  /** For methods whose union result type Comlink spreads into a union of promises. */
  private async callAs<T> (p: Promise<unknown>): Promise<T> {
    return await this.call(p) as T
  }

  open (name: string, registryHash: string): Promise<void> { return this.call(this.remote.open(name, registryHash)) }
  write (batch: StoreBatch): Promise<void> { return this.call(this.remote.write(batch)) }
  latest (key: string, below: Timestamp): ReturnType<Store['latest']> { return this.call(this.remote.latest(key, below)) }
  latestValues (keys: readonly string[], below: Timestamp): Promise<Array<Value | undefined>> { return this.call(this.remote.latestValues(keys, below)) }
  txnRecords (ids: readonly string[]): Promise<Array<string | undefined>> { return this.call(this.remote.txnRecords(ids)) }
  thunkRange (coordinator: string, epoch: number, from: number, to: number): Promise<Thunk[]> { return this.call(this.remote.thunkRange(coordinator, epoch, from, to)) }
  unsettled (): Promise<Thunk[]> { return this.call(this.remote.unsettled()) }
  outcome (ts: Timestamp): Promise<Outcome | undefined> { return this.callAs<Outcome | undefined>(this.remote.outcome(ts)) }
  getMeta (name: string): Promise<Value | undefined> { return this.callAs<Value | undefined>(this.remote.getMeta(name)) }
  entries (below: Timestamp): Promise<Array<[string, Value]>> { return this.call(this.remote.entries(below)) }
  gc (horizon: Timestamp, options?: { readonly records?: Timestamp }): ReturnType<Store['gc']> { return this.call(this.remote.gc(horizon, options)) }
  exportSnapshot (at: Timestamp): Promise<StoreSnapshot> { return this.call(this.remote.exportSnapshot(at)) }
  importSnapshot (snapshot: StoreSnapshot): Promise<void> { return this.call(this.remote.importSnapshot(snapshot)) }

  /** Closes the store in the worker and ends the worker. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      if (this.failure === undefined) await this.call(this.remote.close())
    } finally {
      this.remote[releaseProxy]()
      this.worker.terminate()
    }
  }
}
