import type { IncomingMessage, ServerResponse } from 'node:http'

/** What `POST /nemesis` sets (each call replaces the whole state; `{}` heals everything). */
export interface NemesisState {
  /** Added to this relay's clock (a jump when set at once, skew while it stays). */
  readonly clockOffsetMs?: number
  /** Peers whose messages this relay drops on arrival (a link cut one way; cut both ways when both sides drop). */
  readonly dropFrom?: readonly string[]
  /** Peers whose messages this relay delays on arrival by that many ms (a slow link, one way). */
  readonly delayFrom?: Readonly<Record<string, number>>
}

/**
 * Faults injected into a real relay process for `pnpm nemesis`, enabled by
 * `tideline-relay run --nemesis` and set over the loopback HTTP port: an
 * offset on the protocol's clock, and links from other peers cut or slowed
 * on arrival. Off by default; nothing here runs in a relay started without it.
 */
export class Nemesis {
  private offsetMs = 0
  private drop = new Set<string>()
  private delay = new Map<string, number>()

  readonly clock = { now: (): number => Date.now() + this.offsetMs }

  inbound (from: string): 'drop' | number | undefined {
    if (this.drop.has(from)) return 'drop'
    return this.delay.get(from)
  }

  state (): NemesisState {
    return { clockOffsetMs: this.offsetMs, dropFrom: [...this.drop], delayFrom: Object.fromEntries(this.delay) }
  }

  set (s: NemesisState): void {
    const offset = s.clockOffsetMs ?? 0
    if (!Number.isFinite(offset)) throw new TypeError('clockOffsetMs must be a finite number')
    const drop = s.dropFrom ?? []
    const delay = Object.entries(s.delayFrom ?? {})
    if (!Array.isArray(drop) || drop.some(p => typeof p !== 'string')) throw new TypeError('dropFrom must be a list of peer ids')
    if (delay.some(([, ms]) => typeof ms !== 'number' || !(ms >= 0 && ms <= 60_000))) throw new TypeError('delayFrom must map peer ids to 0..60000 ms')
    this.offsetMs = Math.round(offset)
    this.drop = new Set(drop)
    this.delay = new Map(delay)
  }

  /** `POST /nemesis` with a NemesisState as JSON: answers the state now in force. */
  serve (req: IncomingMessage, res: ServerResponse): void {
    const reply = (code: number, body: unknown): void => { res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body)) }
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { text += chunk; if (text.length > 65_536) req.destroy() })
    req.on('end', () => {
      try {
        this.set(JSON.parse(text) as NemesisState)
        reply(200, this.state())
      } catch (err) {
        reply(400, { error: { name: 'InvalidArgumentError', message: (err as Error).message } })
      }
    })
  }
}
