import { describe, expect, it } from 'vitest';
import {
  BUNDLE_REFRESH_HINT_MAX_MS,
  BUNDLE_REFRESH_HINT_MIN_MS,
  bundleRefreshDelay,
  bundleRefreshInterval,
  MIN_DELAY_MS,
  renewalDelay,
  retryDelay,
} from '../../../src/agent/schedule.js';

const t0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

describe('renewalDelay', () => {
  // A 4 s SVID received at t0, back-dated by one minute like the CA does (SPEC §3).
  const backdated = { notBefore: at(-60_000), notAfter: at(4_000), receivedAt: t0 };

  it.each([
    ['ok/jitter-low-end-is-45-percent', backdated, t0, 0, 1_800],
    ['ok/jitter-middle-is-50-percent', backdated, t0, 0.5, 2_000],
    ['ok/jitter-high-end-is-55-percent', backdated, t0, 1, 2_200],
    ['ok/backdate-ignored', { ...backdated, notBefore: t0 }, t0, 0.5, 2_000],
    ['ok/counts-from-now', backdated, at(1_000), 0.5, 1_000],
    ['ok/one-hour-svid', { notBefore: at(-60_000), notAfter: at(3_600_000), receivedAt: t0 }, t0, 0.5, 1_800_000],
    ['ok/received-before-not-before-uses-not-before', { ...backdated, notBefore: at(2_000) }, t0, 0.5, 3_000],
    ['ok/overdue-floors', backdated, at(2_500), 0.5, MIN_DELAY_MS],
    ['ok/expired-floors', backdated, at(10_000), 0.5, MIN_DELAY_MS],
    ['ok/nan-jitter-is-low-end', backdated, t0, Number.NaN, 1_800],
    ['ok/jitter-above-one-is-clamped', backdated, t0, 7, 2_200],
    ['ok/negative-jitter-is-clamped', backdated, t0, -1, 1_800],
  ])('%s', (_name, lifetime, now, jitter, expected) => {
    expect(renewalDelay(lifetime, now, jitter)).toBe(expected);
  });

  it('ok/jitter-range-stays-within-45-to-55-percent', () => {
    const lifetime = { notBefore: t0, notAfter: at(100_000), receivedAt: t0 };
    for (let i = 0; i <= 20; i++) {
      const delay = renewalDelay(lifetime, t0, i / 20);
      expect(delay).toBeGreaterThanOrEqual(45_000);
      expect(delay).toBeLessThanOrEqual(55_000);
    }
  });
});

describe('retryDelay', () => {
  const backoff = { baseMs: 500, maxMs: 30_000 };

  it.each([
    ['ok/first-attempt-low-end', 1, undefined, 0, 250],
    ['ok/first-attempt-high-end', 1, undefined, 1, 500],
    ['ok/doubles-per-attempt', 4, undefined, 1, 4_000],
    ['ok/equal-jitter-lower-half', 4, undefined, 0, 2_000],
    ['ok/capped-at-max', 20, undefined, 1, 30_000],
    ['ok/huge-attempt-does-not-overflow', 1_000_000, undefined, 1, 30_000],
    ['ok/attempt-zero-is-first', 0, undefined, 1, 500],
    ['ok/quarter-of-remaining-life', 10, 2_000, 1, 500],
    ['ok/quarter-of-remaining-life-low-end', 10, 2_000, 0, 250],
    ['ok/long-life-does-not-cap', 3, 3_600_000, 1, 2_000],
    ['ok/floor-when-life-nearly-over', 10, 400, 1, MIN_DELAY_MS],
    ['ok/expired-svid-only-max-caps', 20, -5_000, 1, 30_000],
    ['ok/zero-remaining-counts-as-expired', 20, 0, 1, 30_000],
  ])('%s', (_name, attempt, remaining, random, expected) => {
    expect(retryDelay(attempt, remaining, backoff, random)).toBe(expected);
  });

  it('ok/custom-floor', () => {
    expect(retryDelay(1, 100, { ...backoff, floorMs: 10 }, 1)).toBe(25);
  });

  it('ok/never-longer-than-a-quarter-of-remaining-life-above-the-floor', () => {
    for (const remaining of [1_100, 5_000, 60_000, 600_000]) {
      for (let attempt = 1; attempt < 40; attempt++) {
        expect(retryDelay(attempt, remaining, backoff, 1)).toBeLessThanOrEqual(remaining / 4);
      }
    }
  });
});

describe('bundleRefreshInterval', () => {
  it.each([
    ['ok/no hint yet: the agent’s own interval', 300_000, undefined, 300_000],
    ['ok/the CA’s hint replaces it, longer', 300_000, 1_800_000, 1_800_000],
    ['ok/the CA’s hint replaces it, shorter', 300_000, 60_000, 60_000],
    ['fail/a hint under a second is clamped up', 300_000, 10, BUNDLE_REFRESH_HINT_MIN_MS],
    ['fail/a hint over a day is clamped down', 300_000, 10 * BUNDLE_REFRESH_HINT_MAX_MS, BUNDLE_REFRESH_HINT_MAX_MS],
  ])('%s', (_name, ownMs, hintMs, expected) => {
    expect(bundleRefreshInterval(ownMs, hintMs)).toBe(expected);
  });
});

describe('bundleRefreshDelay', () => {
  const interval = 300_000;

  it.each([
    ['ok/first-low-end-is-the-floor', true, 0, MIN_DELAY_MS],
    ['ok/first-middle-is-half-the-interval', true, 0.5, 150_000],
    ['ok/first-high-end-is-the-interval', true, 1, 300_000],
    ['ok/later-low-end-is-90-percent', false, 0, 270_000],
    ['ok/later-middle-is-95-percent', false, 0.5, 285_000],
    ['ok/later-high-end-is-the-interval', false, 1, 300_000],
    ['ok/nan-is-low-end', false, Number.NaN, 270_000],
    ['ok/above-one-is-clamped', false, 7, 300_000],
  ])('%s', (_name, first, random, expected) => {
    expect(bundleRefreshDelay(interval, first, random)).toBe(expected);
  });

  it('ok/never-longer-than-the-interval-a-root-rotation-waits-for', () => {
    for (let i = 0; i <= 20; i++) {
      expect(bundleRefreshDelay(interval, true, i / 20)).toBeLessThanOrEqual(interval);
      expect(bundleRefreshDelay(interval, false, i / 20)).toBeLessThanOrEqual(interval);
    }
  });
});
