import { describe, expect, it } from 'vitest';
import { fixedRateP99Added, type PhaseResult, type ProxyRow } from '../../../bench/report.js';

const fixed = (p99Ms: number, baselineP99Ms?: number): PhaseResult => ({
  rps: 1000,
  p50Ms: 0.5,
  p99Ms,
  errors: 0,
  ...(baselineP99Ms === undefined ? {} : { baselineP99Ms }),
});

describe('fixedRateP99Added', () => {
  const direct: ProxyRow = { name: 'direct', fixedRate: fixed(3) };

  it('measures a row against the baseline window its own generator ran before it', () => {
    // The direct row's window came from another, colder generator minutes earlier: it no longer sets the baseline.
    expect(fixedRateP99Added({ name: 'haproxy', fixedRate: fixed(1.5, 0.7) }, direct)).toBeCloseTo(0.8);
  });

  it("falls back to the direct row's p99 for results written before rows had a baseline", () => {
    expect(fixedRateP99Added({ name: 'meshauth', fixedRate: fixed(4.5) }, direct)).toBeCloseTo(1.5);
  });

  it('has no figure without a fixed-rate phase or any baseline', () => {
    expect(fixedRateP99Added({ name: 'nginx' }, direct)).toBeUndefined();
    expect(fixedRateP99Added({ name: 'meshauth', fixedRate: fixed(4.5) }, undefined)).toBeUndefined();
  });
});
