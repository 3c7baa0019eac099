// The sign-in callback's per-client limit stays bounded in memory without letting anyone reset it (found in review:
// at 10,000 tracked clients the table was wiped and the window restarted, so a client held at its limit got its
// whole allowance back as soon as 10,000 other source keys, cheap IPv6 /64s, had called once).
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/gateway/rate-limiter.js';

const NOW = 1_800_000_000_000;
const LIMIT = 30;
/** More distinct clients than the table tracks. */
const FLOOD = 25_000;

/** Attempts of `client` at `nowMs` until the first refusal (at most `LIMIT + 1`); returns how many were allowed. */
function allowedOf(limiter: RateLimiter, client: string, nowMs: number): number {
  let allowed = 0;
  while (allowed <= LIMIT && limiter.take(client, nowMs)) allowed++;
  return allowed;
}

describe('callback rate limiter', () => {
  it('ok/a client gets its limit per window, then again in the next window', () => {
    const limiter = new RateLimiter(LIMIT);
    expect(allowedOf(limiter, '192.0.2.1', NOW)).toBe(LIMIT);
    expect(limiter.take('192.0.2.1', NOW + 59_000)).toBe(false);
    expect(limiter.take('192.0.2.1', NOW + 60_000)).toBe(true);
  });

  it('fail/a client held at its limit stays held when many other clients arrive in the same window', () => {
    const limiter = new RateLimiter(LIMIT);
    expect(allowedOf(limiter, '192.0.2.1', NOW)).toBe(LIMIT);
    let flooded = 0;
    for (let i = 0; i < FLOOD; i++) if (limiter.take(`2001:db8:${i.toString(16)}::/64`, NOW + 1_000)) flooded++;
    expect(flooded).toBe(FLOOD); // the newcomers themselves are not refused
    expect(limiter.take('192.0.2.1', NOW + 2_000)).toBe(false);
    expect(limiter.retryAfterSeconds(NOW + 2_000)).toBe(58);
  });

  it('ok/past the table size a new client is still let in (the least recently seen under its limit is forgotten)', () => {
    const limiter = new RateLimiter(LIMIT);
    for (let i = 0; i < FLOOD; i++) limiter.take(`2001:db8:${i.toString(16)}::/64`, NOW);
    expect(limiter.take('198.51.100.7', NOW)).toBe(true);
    expect(allowedOf(limiter, '198.51.100.7', NOW)).toBe(LIMIT - 1);
  });
});
