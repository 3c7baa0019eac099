// The CA is down for longer than the SVID's remaining life, for an agent whose bootstrap credential is a Kubernetes
// service-account token (reusable, unlike a join token). While the CA is away: the agent keeps its SVID until it
// expires, then holds none that is valid (readiness says no); every attempt is counted as a failure and logged, spaced
// by a jittered backoff, never a tight loop. Once the CA is back, on the same address, the agent bootstraps again by
// itself, without a restart.
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { type FakeApiServer, reviewingCaOptions, startFakeApiServer } from '../helpers/fake-kube-apiserver.js';
import { pod } from '../helpers/projected-token.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, type LogLine, rotations, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

const isFailure = (l: LogLine) => l.msg.startsWith('SVID renewal failed') || l.msg.startsWith('SVID bootstrap failed');

describe('agent: the CA is down for longer than the SVID lives', () => {
  it('fail/no valid SVID while the CA is away, attempts spaced by backoff; ok/back by itself once the CA returns', async () => {
    const api: FakeApiServer = await startFakeApiServer();
    cleanups.push(() => api.close());
    const ca = await CaHarness.start(4_000, cleanups, { kubernetes: reviewingCaOptions(api) });
    const token = await api.mint({ pod: pod('shop', 'orders') });
    const { agent, holder, metrics, logs } = startAgent(ca, token, cleanups, { maxBackoffMs: 1_000 });
    await agent.whenReady();
    const first = holder.current as Credentials;
    await ca.stop();

    await waitFor('the SVID to expire', () => !holder.isValid(new Date()), 10_000);
    expect(holder.current).toBe(first); // kept, but no longer valid: /readyz and /startupz say no
    // A few attempts after expiry, each an error line (no valid SVID) counted as a failure.
    await waitFor(
      'three failed bootstraps after expiry',
      () => logs.filter((l) => isFailure(l) && l.level === 'error' && l.mode === 'bootstrap').length >= 3,
      10_000,
    );
    const failures = logs.filter(isFailure);
    // One counted failure per failure line (another attempt may end while the counter is read).
    const counted = await rotations(metrics, 'failure');
    expect(counted).toBeGreaterThanOrEqual(failures.length);
    expect(counted).toBeLessThanOrEqual(logs.filter(isFailure).length);
    // Backoff with jitter: never closer than the 250 ms floor (a little timer slack), not all the same wait, and far
    // fewer attempts than a loop would make.
    const times = failures.map((l) => Date.parse(String(l.time)));
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(200);
    expect(new Set(failures.map((l) => l.retryInMs)).size).toBeGreaterThan(1);
    const elapsedS = (Date.now() - Date.parse(String(failures[0]?.time))) / 1000;
    expect(failures.length).toBeLessThanOrEqual(Math.ceil(elapsedS * 4) + 1);
    // Without a valid SVID only maxBackoffMs caps the wait: between the floor and 1 s, never 0.
    const withoutSvid = failures.filter((l) => l.level === 'error');
    expect(withoutSvid.every((l) => Number(l.retryInMs) >= 250 && Number(l.retryInMs) <= 1_000)).toBe(true);

    await ca.restart();
    const back = await waitFor(
      'a valid SVID again',
      () => (holder.isValid(new Date()) ? holder.current : undefined),
      10_000,
    );
    expect(back.svid.id.toString()).toBe('spiffe://example.org/ns/shop/sa/orders');
    expect(back.svid.leaf.serialNumber).not.toBe(first.svid.leaf.serialNumber);
    expect(logs.at(-1)?.msg).toBe('SVID obtained');
  }, 40_000);
});
