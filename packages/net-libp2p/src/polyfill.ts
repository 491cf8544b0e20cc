/**
 * libp2p 3 calls `Promise.withResolvers`, which Node 20 lacks. Every Node entry
 * point imports this module before libp2p (ES modules evaluate imports in order).
 */
interface WithResolvers { withResolvers?: unknown }

if (typeof (Promise as WithResolvers).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> (): { promise: Promise<T>, resolve: (v: T | PromiseLike<T>) => void, reject: (reason?: unknown) => void } {
      let resolve!: (v: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

export {}
