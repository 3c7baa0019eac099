// The two trust-bundle refresh failures only a real CA makes happen: the CA now serves a certificate under a root
// the agent does not hold (result="tls"), and a subscriber refuses the new bundle when it is applied
// (result="apply_failure"). Each is counted under its result, logged in one line, and the bundle held stays in force.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { initCa } from '../../src/ca/index.js';
import type { Metrics } from '../../src/telemetry/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent, TRUST_DOMAIN } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

const REFUSED = 'trust bundle refresh failed; keeping the current bundle';

async function bundleRefreshes(metrics: Metrics, result: string): Promise<number> {
  const { values } = await metrics.bundleRefreshes.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe('agent: trust bundle refresh failures against a real CA', () => {
  it('fail/a CA whose serving certificate no longer chains to the held roots counts tls and keeps the bundle', async () => {
    const ca = await CaHarness.start(60_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const { agent, holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 300 });
    await agent.whenReady();
    const held = holder.current as Credentials;
    await waitFor('an ok refresh', async () => (await bundleRefreshes(metrics, 'ok')) >= 1, 10_000);

    // The CA directory replaced by a new CA (a new root) on the same address: its serving certificate is now
    // issued under a root the agent has never held.
    await ca.stop();
    await initCa({ dir: ca.dir, trustDomain: TRUST_DOMAIN, force: true });
    await ca.restart();

    await waitFor('a tls refresh failure', async () => (await bundleRefreshes(metrics, 'tls')) >= 1, 10_000);
    const line = logs.find((l) => l.msg === REFUSED && l.reason === 'tls');
    expect(line?.level).toBe('warn');
    expect(line?.code).toBe('MESHAUTH_ERR_CA_UNAVAILABLE');
    expect(logs.filter((l) => l.msg === REFUSED).every((l) => l.reason === 'tls')).toBe(true);
    // The roots held stay; nothing from the CA we cannot authenticate got in.
    expect(holder.current?.bundle).toBe(held.bundle);
    expect(holder.current?.svid).toBe(held.svid);
    expect(await bundleRefreshes(metrics, 'apply_failure')).toBe(0);
    expect(await metrics.exposition()).toMatch(/^meshauth_bundle_refreshes_total\{result="tls"\} [1-9]\d*$/m);
  }, 30_000);

  it('fail/a subscriber that throws on the new bundle counts apply_failure and keeps the old bundle', async () => {
    const ca = await CaHarness.start(60_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const { agent, holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 300 });
    await agent.whenReady();
    const held = holder.current as Credentials;
    expect(held.bundle.roots).toHaveLength(1);
    cleanups.push(
      holder.subscribe((next) => {
        if (next.bundle.roots.length > 1) throw new Error('trust store cannot be rebuilt');
      }),
    );

    // The CA publishes one more root: the refresh fetches it, and applying it fails.
    const next = await TestCa.create();
    writeFileSync(ca.bundleFile, `${readFileSync(ca.bundleFile, 'utf8')}${next.rootPem}\n`);

    await waitFor(
      'an apply_failure refresh',
      async () => (await bundleRefreshes(metrics, 'apply_failure')) >= 1,
      10_000,
    );
    const line = logs.find((l) => l.msg === REFUSED);
    expect(line?.level).toBe('warn');
    expect(line?.error).toBe('a subscriber failed to apply the new credentials');
    expect(holder.current).toBe(held);
    expect(holder.current?.bundle.roots).toHaveLength(1);
    expect(holder.current?.bundle.hasRoot(next.root)).toBe(false);
    expect(await bundleRefreshes(metrics, 'tls')).toBe(0);
    expect(await metrics.exposition()).toMatch(/^meshauth_bundle_refreshes_total\{result="apply_failure"\} [1-9]\d*$/m);
  }, 30_000);
});
