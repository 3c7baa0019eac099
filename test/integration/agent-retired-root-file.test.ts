import { afterEach, describe, expect, it } from 'vitest';
import { startCaServer } from '../../src/ca/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, retireRootAfterSnapshot, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));
describe('agent after the old root was retired', () => {
  it('fail/a CA serving a certificate under the retired root is refused, though the configured file still lists it', async () => {
    const ca = await CaHarness.start(6_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const harness = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 500 });
    const { agent, holder, logs } = harness;
    const refusedRefreshes = () =>
      logs.filter((l) => l.msg === 'trust bundle refresh failed; keeping the current bundle').length;
    await agent.whenReady();
    const oldRootPem = holder.current?.bundle.toPem() ?? '';
    const { snapshot } = await retireRootAfterSnapshot(ca, harness, cleanups);
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
