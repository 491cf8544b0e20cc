/**
 * Runs `fn` in a later macrotask, after the current one and its microtasks:
 * how the transport coalesces everything sent in one turn into one frame.
 * `setImmediate` in Node; in browsers (which lack it) a MessageChannel post,
 * which is not clamped to 4 ms the way nested `setTimeout(fn, 0)` is.
 */
export function queueTask (fn: () => void): void {
  scheduler(fn)
}

interface MaybeImmediate { setImmediate?: (fn: () => void) => unknown }

const scheduler: (fn: () => void) => void = pickScheduler()

function pickScheduler (): (fn: () => void) => void {
  const immediate = (globalThis as MaybeImmediate).setImmediate
  if (typeof immediate === 'function') return fn => { immediate(fn) }
  if (typeof MessageChannel === 'function') {
    const queue: Array<() => void> = []
    const channel = new MessageChannel()
    channel.port1.addEventListener('message', () => {
      const fn = queue.shift()
      fn?.()
    })
    channel.port1.start()
    // Where ports hold a process open (Node), this one must not.
    ;(channel.port1 as { unref?: () => void }).unref?.()
    return fn => {
      queue.push(fn)
      channel.port2.postMessage(null)
    }
  }
  return fn => { setTimeout(fn, 0) }
}
