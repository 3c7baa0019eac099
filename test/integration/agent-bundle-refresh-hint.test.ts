// The agent refreshes the trust bundle as often as the CA's `spiffe_refresh_hint` says (`ca serve
// --bundle-refresh-hint`), not by its own default: an operator sizes the CA's bundle traffic in one place. A real
// CA and a real Agent; the fetches are counted on node:http's diagnostics channel.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent } from './agent-harness.js';

const HOUR_MS = 60 * 60_000;
const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

/** GET /v1/bundle requests made by this process from now on. */
function countBundleFetches(cleanupList: Cleanup[]): () => number {
  let fetches = 0;
  const onStart = (message: unknown) => {
    const { request } = message as { request: { method: string; path: string } };
    if (request.method === 'GET' && request.path === '/v1/bundle') fetches += 1;
  };
  subscribe('http.client.request.start', onStart);
  cleanupList.push(() => {
    unsubscribe('http.client.request.start', onStart);
  });
  return () => fetches;
}

describe('bundle refresh interval from the CA', () => {
  it('ok/a 1 s hint is followed by an agent whose own interval is 10 s', async () => {
    const ca = await CaHarness.start(10 * 60_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const fetches = countBundleFetches(cleanups);
    // The first refresh falls at `random` × the agent's own 10 s: 5 s, after the bootstrap even on a loaded machine
    // (a refresh without an SVID fetches nothing). By its own interval the fourth fetch would come after 30 s; by the
    // CA's hint it comes 3 s after the first.
    const { holder, logs } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 10_000, random: () => 0.5 });
    await waitFor('an SVID', () => holder.current !== undefined, 20_000);
    await waitFor('four bundle fetches', () => fetches() >= 4, 20_000);
    const noted = logs.filter((line) => line.event === 'bundle_refresh_interval');
    expect(noted).toHaveLength(1);
    expect(noted[0]).toMatchObject({ level: 'info', intervalMs: 1_000, hintMs: 1_000 });
  }, 30_000);

  it('ok/a 1 h hint replaces a 300 ms interval (logged once)', async () => {
    const ca = await CaHarness.start(10 * 60_000, cleanups, { bundleRefreshHintMs: HOUR_MS });
    const { holder, logs } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 300 });
    await waitFor('an SVID', () => holder.current !== undefined, 20_000);
    await waitFor('the interval noted', () => logs.some((line) => line.event === 'bundle_refresh_interval'), 20_000);
    expect(logs.find((line) => line.event === 'bundle_refresh_interval')).toMatchObject({ intervalMs: HOUR_MS });
  }, 30_000);
});
