// Retry-After from an overloaded CA, honoured with full jitter on top of the agent's own backoff (pure).
import { describe, expect, it } from 'vitest';
import { retryAfterDelay } from '../../../src/agent/schedule.js';

describe('retryAfterDelay', () => {
  it.each([
    ['ok/never before Retry-After (random 0)', 500, 2000, 30_000, 0, 2000],
    ['ok/up to twice Retry-After (random → 1)', 500, 2000, 30_000, 1, 4000],
    ['ok/half-way jitter', 500, 2000, 30_000, 0.5, 3000],
    ['ok/the agent backoff wins when longer', 8000, 2000, 30_000, 0.5, 8000],
    ['ok/capped by maxMs', 500, 30_000, 10_000, 0.5, 10_000],
    ['ok/a NaN random counts as 0', 500, 2000, 30_000, Number.NaN, 2000],
  ])('%s', (_name, backoff, retryAfter, max, random, expected) => {
    expect(retryAfterDelay(backoff, retryAfter, max, random)).toBe(expected);
  });

  it('ok/1,000 agents refused at once spread over [Retry-After, 2 × Retry-After): no 100 ms bucket holds > 15 % (even spread: 10 %)', () => {
    const buckets = new Map<number, number>();
    for (let i = 0; i < 1000; i += 1) {
      const delay = retryAfterDelay(500, 1000, 30_000, Math.random());
      expect(delay).toBeGreaterThanOrEqual(1000);
      expect(delay).toBeLessThanOrEqual(2000);
      buckets.set(Math.floor(delay / 100), (buckets.get(Math.floor(delay / 100)) ?? 0) + 1);
    }
    expect(Math.max(...buckets.values())).toBeLessThan(150);
  });
});
