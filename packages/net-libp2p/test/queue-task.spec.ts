import { afterEach, describe, expect, it, vi } from 'vitest'

// The transport coalesces one turn's sends with queueTask: it must run later
// than the current task and its microtasks, in order, with or without setImmediate.
async function order (queueTask: (fn: () => void) => void): Promise<string[]> {
  const seen: string[] = []
  const done = new Promise<void>(resolve => {
    queueTask(() => { seen.push('task 1') })
    queueTask(() => { seen.push('task 2'); resolve() })
  })
  void Promise.resolve().then(() => { seen.push('microtask') })
  seen.push('sync')
  await done
  return seen
}

describe('queueTask', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    vi.resetModules()
  })

  it('runs after the current task and its microtasks, in order (setImmediate)', async () => {
    const { queueTask } = await import('../src/queue-task.js')
    expect(await order(queueTask)).toEqual(['sync', 'microtask', 'task 1', 'task 2'])
  })

  it('does the same where setImmediate does not exist, as in browsers (MessageChannel)', async () => {
    vi.stubGlobal('setImmediate', undefined)
    vi.resetModules()
    const post = vi.spyOn(MessagePort.prototype, 'postMessage')
    const { queueTask } = await import('../src/queue-task.js')
    expect(await order(queueTask)).toEqual(['sync', 'microtask', 'task 1', 'task 2'])
    expect(post).toHaveBeenCalledTimes(2)
    post.mockRestore()
  })
})
