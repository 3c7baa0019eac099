// A count kept per key (connections per client address, requests per peer): a count back at zero is removed, so the
// map holds only keys with something counted.

/** Adds `delta` to the count of `key`; a count back at zero is removed. */
export function addTo(counts: Map<string, number>, key: string, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}
