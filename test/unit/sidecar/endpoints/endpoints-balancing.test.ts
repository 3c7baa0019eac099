// Power of two choices, passive ejection and the DNS refresh schedule: the pure parts of the endpoint sets.
import { describe, expect, it } from 'vitest';
import { pickOfTwo, xorshiftRandom } from '../../../../src/sidecar/endpoints/balancer.js';
import {
  connectFailed,
  connectSucceeded,
  EJECTION,
  isAvailable,
  newEjectionState,
  startProbe,
} from '../../../../src/sidecar/endpoints/ejection.js';
import { failureDelay, RESOLVE_BOUNDS, refreshDelay } from '../../../../src/sidecar/endpoints/resolve-schedule.js';

const endpoints = (loads: number[]) => loads.map((inflight, i) => ({ name: `e${i}`, inflight }));

describe('pickOfTwo', () => {
  it('ok/equal loads spread evenly (each within ±5 % of its share over 30 000 picks)', () => {
    const all = endpoints([0, 0, 0]);
    const random = xorshiftRandom(42);
    const counts = new Map<string, number>();
    for (let i = 0; i < 30_000; i++) {
      const e = pickOfTwo(all, random);
      counts.set(e?.name ?? '', (counts.get(e?.name ?? '') ?? 0) + 1);
    }
    for (const e of all) expect(Math.abs((counts.get(e.name) ?? 0) - 10_000)).toBeLessThan(500);
  });
  it('ok/the less loaded of the two drawn wins: the busiest of three is never chosen', () => {
    const all = endpoints([5, 1, 9]);
    const random = xorshiftRandom(7);
    for (let i = 0; i < 1_000; i++) expect(pickOfTwo(all, random)?.name).not.toBe('e2');
  });
  it('ok/skip avoids the failed endpoint when there is another', () => {
    const all = endpoints([0, 0]);
    const random = xorshiftRandom(1);
    for (let i = 0; i < 100; i++) expect(pickOfTwo(all, random, all[0])).toBe(all[1]);
    const three = endpoints([0, 0, 0]);
    for (let i = 0; i < 1_000; i++) expect(pickOfTwo(three, random, three[1])).not.toBe(three[1]);
  });
  it('ok/one endpoint is chosen even when it is the one to skip; none → undefined', () => {
    const one = endpoints([3]);
    expect(pickOfTwo(one, xorshiftRandom(), one[0])).toBe(one[0]);
    expect(pickOfTwo([], xorshiftRandom())).toBeUndefined();
  });
});

describe('ejection', () => {
  it('ok/ejected after the consecutive-failure threshold, then one probe after the ejection time', () => {
    const state = newEjectionState();
    for (let i = 1; i < EJECTION.consecutiveFailures; i++) expect(connectFailed(state, 0)).toBe(false);
    expect(connectFailed(state, 0)).toBe(true);
    expect(isAvailable(state, EJECTION.baseMs - 1)).toBe(false);
    expect(isAvailable(state, EJECTION.baseMs)).toBe(true);
    startProbe(state, EJECTION.baseMs);
    expect(isAvailable(state, EJECTION.baseMs)).toBe(false); // only one probe at a time
  });
  // Found in review: a probe that ended without a connection outcome (a wrong identity, or a request that rode a
  // connection kept from before) left the endpoint out of the balancing for as long as another endpoint was up.
  it('fail/a probe with no outcome stops holding the endpoint out after probeTimeoutMs', () => {
    const state = newEjectionState();
    for (let i = 0; i < EJECTION.consecutiveFailures; i++) connectFailed(state, 0);
    startProbe(state, EJECTION.baseMs);
    expect(isAvailable(state, EJECTION.baseMs + EJECTION.probeTimeoutMs - 1)).toBe(false);
    expect(isAvailable(state, EJECTION.baseMs + EJECTION.probeTimeoutMs)).toBe(true);
  });
  it('fail/a failed probe ejects again for twice as long (bounded by maxMs)', () => {
    const state = newEjectionState();
    for (let i = 0; i < EJECTION.consecutiveFailures; i++) connectFailed(state, 0);
    let now: number = EJECTION.baseMs;
    let expected = EJECTION.baseMs * 2;
    for (let round = 0; round < 10; round++) {
      startProbe(state, now);
      expect(connectFailed(state, now)).toBe(true);
      expect(state.ejectedUntil - now).toBe(Math.min(EJECTION.maxMs, expected));
      now = state.ejectedUntil;
      expected *= 2;
    }
  });
  it('ok/a successful connection brings it back and resets the count', () => {
    const state = newEjectionState();
    for (let i = 0; i < EJECTION.consecutiveFailures; i++) connectFailed(state, 0);
    connectSucceeded(state);
    expect(isAvailable(state, 0)).toBe(true);
    expect(connectFailed(state, 0)).toBe(false);
  });
  it('ok/failures of connections started before the ejection do not eject it again', () => {
    const state = newEjectionState();
    for (let i = 0; i < EJECTION.consecutiveFailures; i++) connectFailed(state, 0);
    const until = state.ejectedUntil;
    expect(connectFailed(state, 10)).toBe(false);
    expect(state.ejectedUntil).toBe(until);
  });
});

describe('DNS refresh schedule', () => {
  it.each([
    ['ok/TTL 0 → the minimum', 0, RESOLVE_BOUNDS.minMs],
    ['ok/TTL 5 s', 5, 5_000],
    ['ok/TTL one day → the maximum', 86_400, RESOLVE_BOUNDS.maxMs],
    ['fail/TTL not a number → the minimum', Number.NaN, RESOLVE_BOUNDS.minMs],
  ])('%s', (_name, ttl, expected) => {
    expect(refreshDelay(ttl)).toBe(expected);
  });
  it('ok/failures back off from 1 s, doubling, up to the maximum', () => {
    expect([1, 2, 3, 4, 5, 6, 50].map(failureDelay)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
});
