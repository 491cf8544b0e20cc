import { describe, expect, it } from 'vitest'
import { jsonLogger, levelOf } from '../src/log.js'

describe('relay log levels', () => {
  it('logs a failed store as an error and junk or refused input as warnings', () => {
    expect(levelOf('store-failed')).toBe('error')
    expect(levelOf('diverged')).toBe('error')
    expect(levelOf('handler-error')).toBe('warn')
    expect(levelOf('invalid-message')).toBe('warn')
    expect(levelOf('junk')).toBe('warn')
    expect(levelOf('recovered')).toBe('info')
    expect(levelOf('rc-installed')).toBe('info')
  })

  it('writes one JSON line per event with its level', () => {
    const lines: string[] = []
    jsonLogger({ relay: 'r0' }, l => { lines.push(l) })('store-failed', { error: 'disk full' })
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 'error', event: 'store-failed', relay: 'r0', error: 'disk full' })
  })
})
