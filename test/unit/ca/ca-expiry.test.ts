// When a self-managed CA rotates its intermediate and when it starts warning (pure).
import { describe, expect, it } from 'vitest';
import { EXPIRY_WARNING_MS, expiresSoon, halfLifeOf } from '../../../src/ca/ca-expiry.js';
import { BACKDATE_MS } from '../../../src/pki/index.js';

const T = Date.parse('2026-06-01T00:00:00Z');
const issued = (ttlMs: number) => ({ notBefore: new Date(T - BACKDATE_MS), notAfter: new Date(T + ttlMs) });

describe('halfLifeOf', () => {
  it.each([
    ['ok/30 days → 15 days after issuance', 30 * 86_400_000, 15 * 86_400_000],
    ['ok/6 s → 3 s after issuance (the back-dated minute does not count)', 6000, 3000],
  ])('%s', (_name, ttl, half) => {
    expect(halfLifeOf(issued(ttl)).getTime()).toBe(T + half);
  });
  it('ok/never later than notAfter, even for a hand-made certificate shorter than the back-dated minute', () => {
    const cert = { notBefore: new Date(T), notAfter: new Date(T + 10_000) };
    expect(halfLifeOf(cert).getTime()).toBeLessThanOrEqual(cert.notAfter.getTime());
  });
});

describe('expiresSoon', () => {
  it.each([
    ['ok/8 days left: quiet', 8 * 86_400_000, false],
    ['ok/exactly 7 days left: warn', EXPIRY_WARNING_MS, true],
    ['ok/1 hour left: warn', 3_600_000, true],
    ['ok/expired: warn', -1, true],
  ])('%s', (_name, left, soon) => {
    expect(expiresSoon({ notBefore: new Date(T - 1), notAfter: new Date(T + left) }, new Date(T))).toBe(soon);
  });
});
