// The agent through CA faults: the CA goes away mid-life and comes back on the same port; the SVID expires while the CA
// is away and the used join token cannot bootstrap again; the CA publishes an extra root and the agent picks it up
// without a new SVID.
// Every test has its own CA, agent and cleanup list, and mostly waits out SVID lifetimes: the tests run side by side,
// taking `expect` from their context.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it, type TestContext } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent, WORKLOAD_ID } from './agent-harness.js';

/** A test's own cleanup list, run when that test finishes. */
function cleanupsOf(onTestFinished: TestContext['onTestFinished']): Cleanup[] {
  const cleanups: Cleanup[] = [];
  onTestFinished(() => runCleanups(cleanups));
  return cleanups;
}

describe.concurrent('agent through CA outages', () => {
  it('ok/keeps-the-svid-while-the-ca-is-down-and-recovers-after-restart', async ({ expect, onTestFinished }) => {
    const cleanups = cleanupsOf(onTestFinished);
    const ca = await CaHarness.start(8_000, cleanups);
    const { agent, holder, metrics, logs } = startAgent(ca, await ca.token(), cleanups);
    await agent.whenReady();
    const first = holder.current as Credentials;
    const changes: { credentials: Credentials; at: Date }[] = [];
    cleanups.push(holder.subscribe((credentials) => changes.push({ credentials, at: new Date() })));
    await ca.stop();

    await waitFor('two failed renewals', async () => (await rotations(metrics, 'failure')) >= 2, 15_000);
    expect(holder.current).toBe(first);
    expect(holder.isValid(new Date())).toBe(true);
    expect(changes).toEqual([]);
    expect(
      logs.some((l) => l.level === 'warn' && l.mode === 'renewal' && l.code === 'MESHAUTH_ERR_CA_UNAVAILABLE'),
    ).toBe(true);

    await ca.restart();
    const renewed = await waitFor('renewal after the CA restart', () => changes[0], 15_000);
    expect(renewed.at.getTime()).toBeLessThan(first.svid.notAfter.getTime());
    expect(renewed.credentials.svid.id.toString()).toBe(WORKLOAD_ID);
    expect(renewed.credentials.svid.leaf.serialNumber).not.toBe(first.svid.leaf.serialNumber);
    expect(holder.isValid(new Date())).toBe(true);
    expect(await rotations(metrics, 'success')).toBeGreaterThanOrEqual(2);
  });

  it('fail/used-join-token-cannot-bootstrap-after-expiry-until-a-new-token-arrives', async ({
    expect,
    onTestFinished,
  }) => {
    const cleanups = cleanupsOf(onTestFinished);
    const ca = await CaHarness.start(3_000, cleanups);
    const { agent, holder, metrics, logs, tokenFile } = startAgent(ca, await ca.token(), cleanups);
    await agent.whenReady();
    const first = holder.current as Credentials;
    await ca.stop();
    await waitFor('SVID expiry', () => !holder.isValid(new Date()), 15_000);

    await ca.restart();
    await waitFor(
      'single-use token warning',
      () => logs.some((l) => l.level === 'warn' && l.msg.includes('single-use')),
      15_000,
    );
    expect(holder.isValid(new Date())).toBe(false);
    expect(holder.current).toBe(first); // kept, but no longer valid: readiness says no
    const failures = await rotations(metrics, 'failure');
    expect(failures).toBeGreaterThanOrEqual(1);
    expect(
      logs.some((l) => l.level === 'error' && l.mode === 'bootstrap' && l.code === 'MESHAUTH_ERR_CA_UNAUTHENTICATED'),
    ).toBe(true);

    // The token file is read afresh at each attempt: a new token brings the agent back by itself.
    writeFileSync(tokenFile, await ca.token());
    await waitFor('re-bootstrap with the new token', () => holder.isValid(new Date()), 15_000);
    expect(holder.current?.svid.id.toString()).toBe(WORKLOAD_ID);
  });

  it('ok/bundle-refresh-adds-a-root-and-keeps-the-svid', async ({ expect, onTestFinished }) => {
    const cleanups = cleanupsOf(onTestFinished);
    const ca = await CaHarness.start(60_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const { agent, holder, logs } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 300 });
    await agent.whenReady();
    const first = holder.current as Credentials;
    expect(first.bundle.roots).toHaveLength(1);

    const next = await TestCa.create();
    writeFileSync(ca.bundleFile, `${readFileSync(ca.bundleFile, 'utf8')}${next.rootPem}\n`);
    await waitFor('bundle with two roots', () => holder.current?.bundle.roots.length === 2, 15_000);
    expect(holder.current?.svid).toBe(first.svid);
    expect(holder.current?.bundle.hasRoot(next.root)).toBe(true);
    expect(logs.some((l) => l.msg === 'trust bundle updated')).toBe(true);
  });
});
