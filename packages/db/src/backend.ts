import { wrap, releaseProxy, type Remote } from 'comlink'
import { STORE_METHODS, WorkerFailedError, type AppliedRun, type Cursor, type RunApplier, type RunPlan, type RunRules, type Store, type StoreMethod, type Thunk } from '@tideline/core'
import type { WorkerApi } from './worker.js'

/**
 * The page's side of a database worker: a `Store` and a `RunApplier` whose
 * every call goes to the worker (the store's methods derived from the
 * contract's list, `STORE_METHODS`, as the worker's API is). If the worker dies (an uncaught error, a
 * message that cannot be cloned) every pending and later call rejects with
 * WorkerFailedError instead of hanging, and `onFailure` listeners hear it.
 */
export class WorkerBackend {
  /** The worker's store: every `Store` method (from `STORE_METHODS`) forwarded, failing with the worker. */
  readonly store: Store
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
    this.applier = (run: readonly Thunk[], base: Cursor, rules: RunRules, plan?: RunPlan): Promise<AppliedRun> => this.call(this.remote.applyRun(run, base, rules, plan))
    const forwarded: Partial<Record<StoreMethod, (...args: never[]) => Promise<unknown>>> = {}
    for (const m of STORE_METHODS) {
      const remote = this.remote[m] as unknown as (...args: never[]) => Promise<unknown>
      forwarded[m] = (...args: never[]) => this.call(remote(...args))
    }
    this.store = { ...(forwarded as Pick<Store, StoreMethod>), close: () => this.close() }
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

  open (name: string, registryHash: string): Promise<void> { return this.call(this.remote.open(name, registryHash)) }

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
