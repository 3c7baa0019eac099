// A root activated before the agents learned it (`ca rotate --root` straight followed by `--root --activate`): the
// CA's serving certificate now chains to a root the agent does not hold, so its bundle refresh and its renewal
// fail the TLS check. docs/ca.md says clients configured with a file need the new bundle.pem: with the file
// updated, the agent must get back in without a restart (it used to trust only the bundle it held, for ever).
// The two tests have a CA, an agent and a cleanup list each, and mostly wait for the agent's timers: they run side by
// side, taking `expect` from their context.
import { copyFileSync, rmSync } from 'node:fs';
import { describe, it, type TestContext } from 'vitest';
import { activateNextRoot, publishNextRoot } from '../../src/ca/index.js';
import type { Metrics } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

/** A test's own cleanup list, run when that test finishes. */
function cleanupsOf(onTestFinished: TestContext['onTestFinished']): Cleanup[] {
  const cleanups: Cleanup[] = [];
  onTestFinished(() => runCleanups(cleanups));
  return cleanups;
}

/** `meshauth_bundle_refreshes_total{result="ok"}` as a number. */
async function refreshesOk(metrics: Metrics): Promise<number> {
  return (await metrics.bundleRefreshes.get()).values.find((v) => v.labels.result === 'ok')?.value ?? 0;
}

describe.concurrent('agent after a root activated too soon', () => {
  it('fail/the bundle refresh fails until the configured bundle file holds the new root, then succeeds', async ({
    expect,
    onTestFinished,
  }) => {
    const cleanups = cleanupsOf(onTestFinished);
    const ca = await CaHarness.start(60_000, cleanups, { bundleRefreshHintMs: 3_000 });
    const { agent, holder, logs, metrics, bundleFile } = startAgent(ca, await ca.token(), cleanups, {
      // No jitter: each refresh comes 90 % of its interval after the one before ends, 1 s until the first fetch
      // brings the CA's hint of 3 s (a refresh before the first SVID fetches nothing).
      bundleRefreshMs: 1_000,
      random: () => 0,
    });
    await agent.whenReady();
    // The rotation starts right after a refresh that took the one root: the next refresh is 2.7 s away, long after
    // the activation. (Timed from the agent's start instead, a slow bootstrap let a refresh learn the published root
    // first on a loaded CI machine.)
    await waitFor('a bundle refresh', async () => (await refreshesOk(metrics)) >= 1, 10_000);
    expect(holder.current?.bundle.roots).toHaveLength(1);
    await publishNextRoot(ca.dir);
    await activateNextRoot(ca.dir); // before the agent's next refresh could learn the new root
    await waitFor(
      'a refresh that fails the CA certificate check',
      () => logs.some((line) => line.msg === 'trust bundle refresh failed; keeping the current bundle'),
      15_000,
    );
    expect(holder.current?.bundle.roots).toHaveLength(1);
    copyFileSync(ca.bundleFile, bundleFile); // the operator's step: both roots in the configured file
    await waitFor('the refresh to succeed', () => holder.current?.bundle.roots.length === 2, 15_000);
  }, 45_000);

  it('ok/a configured bundle file that is gone leaves renewals on the bundle held', async ({
    expect,
    onTestFinished,
  }) => {
    const cleanups = cleanupsOf(onTestFinished);
    const ca = await CaHarness.start(6_000, cleanups);
    const { agent, metrics, bundleFile } = startAgent(ca, await ca.token(), cleanups);
    await agent.whenReady();
    rmSync(bundleFile);
    await waitFor('a renewal without the file', async () => (await rotations(metrics, 'success')) >= 2, 15_000);
    expect(await rotations(metrics, 'failure')).toBe(0);
  });
});
