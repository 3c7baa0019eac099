// A root activated before the agents learned it (`ca rotate --root` straight followed by `--root --activate`): the
// CA's serving certificate now chains to a root the agent does not hold, so its bundle refresh and its renewal
// fail the TLS check. docs/ca.md says clients configured with a file need the new bundle.pem: with the file
// updated, the agent must get back in without a restart (it used to trust only the bundle it held, for ever).
import { copyFileSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { activateNextRoot, publishNextRoot } from '../../src/ca/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent after a root activated too soon', () => {
  it('fail/the bundle refresh fails until the configured bundle file holds the new root, then succeeds', async () => {
    const ca = await CaHarness.start(60_000, cleanups, { bundleRefreshHintMs: 6_000 });
    const { agent, holder, logs, bundleFile } = startAgent(ca, await ca.token(), cleanups, {
      // The first refresh at the end of its interval (counted from the agent's start), after the activation below
      // even on a loaded machine: with 3 s, a slow bootstrap let it learn the published root first (a CI run).
      bundleRefreshMs: 6_000,
      random: () => 0.999,
    });
    await agent.whenReady();
    expect(holder.current?.bundle.roots).toHaveLength(1);
    await publishNextRoot(ca.dir);
    await activateNextRoot(ca.dir); // before the agent's first refresh could learn the new root
    await waitFor(
      'a refresh that fails the CA certificate check',
      () => logs.some((line) => line.msg === 'trust bundle refresh failed; keeping the current bundle'),
      15_000,
    );
    expect(holder.current?.bundle.roots).toHaveLength(1);
    copyFileSync(ca.bundleFile, bundleFile); // the operator's step: both roots in the configured file
    await waitFor('the refresh to succeed', () => holder.current?.bundle.roots.length === 2, 15_000);
  }, 45_000);

  it('ok/a configured bundle file that is gone leaves renewals on the bundle held', async () => {
    const ca = await CaHarness.start(6_000, cleanups);
    const { agent, metrics, bundleFile } = startAgent(ca, await ca.token(), cleanups);
    await agent.whenReady();
    rmSync(bundleFile);
    await waitFor('a renewal without the file', async () => (await rotations(metrics, 'success')) >= 2, 15_000);
    expect(await rotations(metrics, 'failure')).toBe(0);
  });
});
