// A bootstrap must not trust a root the CA has retired either. The agent remembers roots the CA dropped from its
// bundle and keeps them out of the anchors of a renewal and a bundle refresh, though the configured ca.bundle file
// (a copy handed out at deploy time) still lists them; a bootstrap merged that file in whole. Whoever holds the
// retired root's key, and keeps the real CA out of reach until the agent's SVID expires, then gets the agent's
// bootstrap credential (a join token or a service-account token, which they can redeem at the real CA) and has the
// agent install an SVID under the retired root. Here the impersonator is the real CA started from a copy of its
// directory taken before the rotation, with a join token it knows in the agent's token file.
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/agent/index.js';
import { createJoinToken, startCaServer } from '../../src/ca/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import {
  CaHarness,
  type Cleanup,
  retireRootAfterSnapshot,
  runCleanups,
  startAgent,
  WORKLOAD_ID,
} from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent bootstrap after the old root was retired', () => {
  it('fail/a CA serving a certificate under the retired root never gets the bootstrap credential', async () => {
    const ca = await CaHarness.start(6_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const harness = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 500 });
    const { agent, holder, logs, tokenFile } = harness;
    await agent.whenReady();
    const { snapshot, oldRoot } = await retireRootAfterSnapshot(ca, harness, cleanups);
    await waitFor('the agent to hold only the new root', () => holder.current?.bundle.roots.length === 1, 15_000);
    const held = holder.current as Credentials;
    expect(held.bundle.hasRoot(oldRoot as NonNullable<typeof oldRoot>)).toBe(false);

    // The impersonator takes the CA's address and knows the token now in the agent's token file.
    const url = new URL(ca.url);
    await ca.stop();
    const impersonatorMetrics = new Metrics();
    const fake = await startCaServer({
      dir: snapshot,
      listen: `127.0.0.1:${url.port}`,
      svidTtlMs: 60_000,
      logger: silentLogger(),
      metrics: impersonatorMetrics,
    });
    cleanups.push(() => fake.close());
    writeFileSync(tokenFile, await createJoinToken({ dir: snapshot, id: WORKLOAD_ID, ttlMs: 60_000 }));

    await waitFor('the SVID to expire', () => !holder.isValid(new Date()), 15_000);
    await waitFor(
      'two bootstrap attempts after expiry',
      () => logs.filter((l) => l.mode === 'bootstrap' && l.level === 'error').length >= 2 || holder.current !== held,
      15_000,
    );
    const issued = (await impersonatorMetrics.caSvidsIssued.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(issued, 'the impersonator redeemed the agent’s bootstrap token').toBe(0);
    expect(holder.current, 'the agent installed an SVID from the impersonator').toBe(held);
    expect(logs.filter((l) => l.mode === 'bootstrap' && l.level === 'error').every((l) => l.reason === 'tls')).toBe(
      true,
    );
  }, 60_000);
});
