/** How long replaced versions stay in memory for reads below a key's newest one (IdbStoreInit.versionWindowMs). */
export const DEFAULT_VERSION_WINDOW_MS = 10_000

/** Rows fetched per request during scans: big enough to amortise the round trip, small enough to bound memory. */
export const SCAN_CHUNK = 2000

/** Most run records a lookup steps over past the timestamps it looks for (late runs interleave). */
export const MAX_RUN_SCAN = 64

/** Rows a range read of the keys a settlement batch writes may return per key (see NewestReader). */
export const RANGE_ROWS_PER_KEY = 2

/** Most settlement batches that read key by key after range reads fell short, before trying one again. */
export const MAX_RANGE_BACKOFF = 16
