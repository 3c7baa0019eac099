// What of a DNS answer becomes endpoints: addresses no workload listens on are dropped, the set is capped, and a TTL
// missing from records past the 256th no longer makes the refresh NaN (a query a second whatever the TTL).
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TTL_SECONDS,
  MAX_ENDPOINTS_PER_NAME,
  smallestTtl,
  usableAddresses,
} from '../../../../src/sidecar/endpoints/dns-answer.js';

describe('smallestTtl', () => {
  it('ok/the smallest finite TTL', () => {
    expect(smallestTtl([30, 5, 600])).toBe(5);
    expect(smallestTtl([0, 5])).toBe(0);
  });
  it('fail/records without a TTL (past the 256th) are skipped, not NaN', () => {
    expect(smallestTtl([20, undefined, undefined])).toBe(20);
    expect(smallestTtl([undefined, Number.NaN])).toBe(DEFAULT_TTL_SECONDS);
    expect(smallestTtl([])).toBe(DEFAULT_TTL_SECONDS);
  });
});

describe('usableAddresses', () => {
  it('ok/distinct, in answer order; the undialable named apart', () => {
    expect(usableAddresses(['10.0.0.2', '0.0.0.0', '10.0.0.1', '10.0.0.2', '169.254.169.254'])).toEqual({
      addresses: ['10.0.0.2', '10.0.0.1'],
      ignored: ['0.0.0.0', '169.254.169.254'],
      overCap: 0,
    });
  });
  it(`fail/past ${MAX_ENDPOINTS_PER_NAME} addresses the rest are counted, not kept`, () => {
    const answer = Array.from({ length: 3_000 }, (_, i) => `10.${i >> 8}.${i & 255}.1`);
    const usable = usableAddresses(answer);
    expect(usable.addresses).toEqual(answer.slice(0, MAX_ENDPOINTS_PER_NAME));
    expect(usable.overCap).toBe(3_000 - MAX_ENDPOINTS_PER_NAME);
  });
});
