// The rapid-reset rule of an HTTP/2 server session (sidecar/premature-resets.ts: the inbound's and the gateway's),
// on counts and ages alone. Found in review:
// the gateway had no such rule; only nghttp2's own limit (about a thousand resets, silent) ended a session whose
// client opened streams and reset them, each already forwarded into the mesh.
import { describe, expect, it } from 'vitest';
import { MAX_PREMATURE_RESETS, PREMATURE_LIFETIME_MS, PrematureResets } from '../../../src/sidecar/premature-resets.js';

/** Opens `n` streams and closes each before its head at `ageMs`; the index (1-based) of each close that tripped. */
function run(resets: PrematureResets, n: number, ageMs: number): number[] {
  const tripped: number[] = [];
  for (let i = 1; i <= n; i++) {
    resets.opened();
    if (resets.closedBeforeHead(ageMs)) tripped.push(i);
  }
  return tripped;
}

describe('gateway rapid-reset rule', () => {
  it('fail/the 100th young reset of a session that reset all its streams trips it, once', () => {
    const resets = new PrematureResets();
    expect(run(resets, 1_000, 5)).toEqual([MAX_PREMATURE_RESETS]);
  });

  it('ok/resets past the lifetime do not count', () => {
    expect(run(new PrematureResets(), 1_000, PREMATURE_LIFETIME_MS)).toEqual([]);
  });

  it('ok/a session whose young resets are not more than half of its streams is kept', () => {
    const resets = new PrematureResets();
    for (let i = 0; i < 200; i++) resets.opened(); // answered streams
    expect(run(resets, 200, 5)).toEqual([]); // 200 young resets of 400 streams: exactly half
    expect(run(resets, 1, 5)).toEqual([1]); // the 201st of 401: more than half
  });

  it('ok/a browser cancelling fewer than 100 requests is kept', () => {
    expect(run(new PrematureResets(), MAX_PREMATURE_RESETS - 1, 0)).toEqual([]);
  });
});
