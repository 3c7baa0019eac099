// When to resolve a route's DNS name again: after the record TTL, bounded so that a TTL of 0 does not turn into a
// query per request and a long TTL does not hide a moved endpoint for hours; after a failed query, soon but with
// backoff (the last good addresses stay in use meanwhile). Pure.

export const RESOLVE_BOUNDS = Object.freeze({
  minMs: 1_000,
  maxMs: 30_000,
  /** First retry after a failed query; doubled per failure up to maxMs. */
  failureBaseMs: 1_000,
});

/** Delay before the next query for records whose smallest TTL is `ttlSeconds`. */
export function refreshDelay(ttlSeconds: number): number {
  const ms = Number.isFinite(ttlSeconds) && ttlSeconds > 0 ? ttlSeconds * 1000 : 0;
  return Math.min(RESOLVE_BOUNDS.maxMs, Math.max(RESOLVE_BOUNDS.minMs, ms));
}

/** Delay before retrying after `failures` failed queries in a row (1, 2, …). */
export function failureDelay(failures: number): number {
  return Math.min(RESOLVE_BOUNDS.maxMs, RESOLVE_BOUNDS.failureBaseMs * 2 ** Math.max(0, Math.min(failures - 1, 10)));
}
