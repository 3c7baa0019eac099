// Found by a review of the change that made the agent trust the CA, for renewal and bundle refresh, by the bundle it holds plus the
// configured ca.bundle file. After `ca rotate --root --retire` the agent's held bundle drops the old root, but a
// sidecar's configured bundle.pem (a copy handed out at deploy time; docs/ca.md does not ask to replace it at
// retirement) still lists it. Whoever holds the retired root's key (the reason to retire early with --force) can
// then serve a CA certificate under it: the refresh accepts it, installs the bundle it returns, and the agent
// renews its SVID there. Before 21d0f6e the held bundle (without the retired root) refused that CA.
// Here the impersonator is the real CA started from a copy of its directory taken before the rotation.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { activateNextRoot, publishNextRoot, retirePreviousRoot, startCaServer } from '../../src/ca/index.js';
import { BACKDATE_MS } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));
describe('agent after the old root was retired', () => {
  it('fail/a CA serving a certificate under the retired root is refused, though the configured file still lists it', async () => {
    const ca = await CaHarness.start(6_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const { agent, holder, logs } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 500 });
    const refusedRefreshes = () =>
      logs.filter((l) => l.msg === 'trust bundle refresh failed; keeping the current bundle').length;
    await agent.whenReady();
    const oldRootPem = holder.current?.bundle.toPem() ?? '';
    const snapshot = mkdtempSync(join(tmpdir(), 'meshauth-old-ca-'));
    cleanups.push(() => rmSync(snapshot, { recursive: true, force: true }));
    cpSync(ca.dir, snapshot, { recursive: true }); // the old root's key, as an attacker who has it

    // The new root's NotBefore in the same second as the old one's (a rotation within a second, as a fast test
    // makes it): which of the two is older must not depend on the clock's resolution.
    const oldRoot = holder.current?.bundle.roots[0];
    await publishNextRoot(ca.dir, new Date((oldRoot?.notBefore.getTime() ?? 0) + BACKDATE_MS));
    await waitFor('the agent to hold both roots', () => holder.current?.bundle.roots.length === 2, 10_000);
    await activateNextRoot(ca.dir);
    const renewedBefore = logs.filter((l) => l.msg === 'SVID renewed').length;
    await waitFor(
      'a renewal under the new root',
      () => logs.filter((l) => l.msg === 'SVID renewed').length > renewedBefore,
      10_000,
    );
    await retirePreviousRoot(ca.dir, new Date(), true);
    await waitFor(
      'the agent to hold only the new root, with an SVID under it',
      () => holder.current?.bundle.roots.length === 1 && holder.current.bundle.toPem() !== oldRootPem,
      15_000,
    );
    expect(holder.current?.bundle.toPem()).not.toBe(oldRootPem);
    expect(holder.current?.bundle.roots).toHaveLength(1);
    const newRootPem = holder.current?.bundle.toPem();

    // The impersonator takes the CA's address.
    const refusedBefore = refusedRefreshes();
    const url = new URL(ca.url);
    await ca.stop();
    const fake = await startCaServer({
      dir: snapshot,
      listen: `127.0.0.1:${url.port}`,
      svidTtlMs: 6_000,
      bundleRefreshHintMs: 1_000,
      logger: silentLogger(),
      metrics: new Metrics(),
    });
    cleanups.push(() => fake.close());
    // Several refreshes went to the impersonator and were refused (or one took its bundle: the assertion says so).
    await waitFor(
      'two refused bundle refreshes from the impersonator',
      () => refusedRefreshes() >= refusedBefore + 2 || holder.current?.bundle.toPem() !== newRootPem,
      10_000,
    );
    expect(holder.current?.bundle.toPem(), 'the agent took the retired root back from the impersonator').toBe(
      newRootPem,
    );
  }, 40_000);
});
