import type { EpochChange } from '../types.js'
import { keeps } from './reconfig/choose-value.js'
import type { EpochRecord, Stream } from './state.js'

/** An epoch's streams as its decided cut leaves them. */

/** Skipped (aborted) seqs count as had, and so do seqs that held nothing for this observer: there is nothing to fetch for them. */
export function advanceHave (stream: Stream): void {
  while (stream.held.has(stream.have + 1) || passes(stream, stream.have + 1)) stream.have++
}

/** Whether evaluation passes `seq` without a batch: the cut aborted it, or it held nothing for this observer. */
export const passes = (stream: Stream, seq: number): boolean => stream.skip?.has(seq) === true || stream.voids?.has(seq) === true

/** Whether the epoch's decided cut aborted (or never had) `seq` of this stream. */
export function cutOff (record: EpochRecord, stream: Stream, seq: number): boolean {
  return record.floor !== undefined && (seq > (stream.end ?? 0) || stream.skip?.has(seq) === true)
}

/** Marks where each of the old epoch's sequences ends (from the decided change) and drops held batches it aborted. */
export function applyCut (record: EpochRecord, change: EpochChange): void {
  record.floor = change.floor
  for (const [coordinator, stream] of record.streams) {
    const cut = change.cuts.find(x => x.coordinator === coordinator)
    stream.end = cut?.end ?? 0
    stream.skip = new Set(cut?.skip ?? [])
    for (const seq of stream.held.keys()) if (!keeps(cut, seq)) stream.held.delete(seq)
    advanceHave(stream)
  }
}
