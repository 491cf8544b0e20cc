/**
 * Virtual time. Events run in (time, insertion) order, one after another and
 * synchronously: the simulated peers await nothing (see SimPeer), so a run is
 * a deterministic function of its seed.
 */
interface Event {
  readonly at: number
  readonly seq: number
  readonly fn: () => void
}

export class EventLoop {
  private heap: Event[] = []
  private seq = 0
  now = 0

  at (time: number, fn: () => void): void {
    this.push({ at: Math.max(time, this.now), seq: this.seq++, fn })
  }

  after (delay: number, fn: () => void): void {
    this.at(this.now + delay, fn)
  }

  /** Runs events until `done()` holds or virtual time passes `until`; true if done. */
  run (done: () => boolean, until: number): boolean {
    while (!done()) {
      const e = this.pop()
      if (e === undefined || e.at > until) {
        if (e !== undefined) this.push(e)
        this.now = Math.max(this.now, until)
        return done()
      }
      this.now = e.at
      e.fn()
    }
    return true
  }

  private push (e: Event): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(e, h[p] as Event)) break
      h[i] = h[p] as Event
      i = p
    }
    h[i] = e
  }

  private pop (): Event | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (top === undefined || last === undefined || h.length === 0) return top
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      let best = last
      if (l < h.length && less(h[l] as Event, best)) { m = l; best = h[l] as Event }
      if (r < h.length && less(h[r] as Event, best)) { m = r }
      if (m === i) break
      h[i] = h[m] as Event
      i = m
    }
    h[i] = last
    return top
  }
}

function less (a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
