// Per-request endpoint choice by "power of two choices" (Mitzenmacher): pick two endpoints at random and take the
// one with fewer streams in flight. Nearly as even as least-loaded, without scanning every endpoint and without
// the herd behaviour of always choosing the global minimum. Pure; the random source is a small xorshift (balancing
// needs speed and spread, not unpredictability).

export interface Candidate {
  /** Requests in flight on this endpoint. */
  readonly inflight: number;
}

/** A fast pseudo-random integer source in [0, n). */
export type RandomIndex = (n: number) => number;

export function xorshiftRandom(seed = 0x9e3779b9): RandomIndex {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % n;
  };
}

/**
 * The less loaded of two distinct random candidates (ties: the first drawn); `skip` (a failed endpoint) is only
 * chosen when it is the only one.
 */
export function pickOfTwo<T extends Candidate>(candidates: readonly T[], random: RandomIndex, skip?: T): T | undefined {
  const n = candidates.length;
  if (n === 0) return undefined;
  if (n === 1) return candidates[0];
  if (skip !== undefined && n === 2) return candidates[0] === skip ? candidates[1] : candidates[0];
  let a = candidates[random(n)] as T;
  let b = candidates[random(n - 1)] as T;
  if (b === a) b = candidates[n - 1] as T; // distinct: draw from n-1 and map the collision to the last one
  if (a === skip) a = b;
  else if (b === skip) b = a;
  return b.inflight < a.inflight ? b : a;
}
