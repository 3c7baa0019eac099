// Found by a review: the agent recorded every root that a CA answer no longer lists as "retired", including
// a root that was only *newer* than what a lagging CA replica knows (docs/ca.md: with --k8s-secret every replica
// switches "within a minute", the kubelet's Secret sync). An agent that saw {R1,R2} from an updated replica and then
// {R1} from a lagging one remembers R2 as dropped; if R2 is then activated before the agent's next good refresh
// (the "activated too soon" case the ca.bundle file recovery exists for), #caAnchors filters R2 out of the updated
// file and the agent can no longer reach the CA until its SVID expires. Before that memory existed, the file let it back in.
// The lagging replica here is the real CA started from a copy of its directory taken before `ca rotate --root`.
import { copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { activateNextRoot, publishNextRoot, startCaServer } from '../../src/ca/index.js';
import { BACKDATE_MS } from '../../src/pki/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent after a lagging CA replica served the bundle without the new root', () => {
  it('fail/the updated ca.bundle file still lets the agent back in after an early activation', async () => {
    const ca = await CaHarness.start(120_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const { agent, holder, logs, bundleFile } = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 300 });
    await agent.whenReady();
    const lagging = mkdtempSync(join(tmpdir(), 'meshauth-lagging-ca-'));
    cleanups.push(() => rmSync(lagging, { recursive: true, force: true }));
    cpSync(ca.dir, lagging, { recursive: true }); // a replica whose Secret mount is not updated yet

    // Both roots' NotBefore in one second: the replica's missing root must still count as the newer one.
    const oldRoot = holder.current?.bundle.roots[0];
    await publishNextRoot(ca.dir, new Date((oldRoot?.notBefore.getTime() ?? 0) + BACKDATE_MS));
    await waitFor('the agent to hold both roots', () => holder.current?.bundle.roots.length === 2, 10_000);

    // The agent's next refresh reaches the lagging replica (same address: behind one Service).
    const url = new URL(ca.url);
    await ca.stop();
    const replica = await startCaServer({
      dir: lagging,
      listen: `127.0.0.1:${url.port}`,
      svidTtlMs: 120_000,
      bundleRefreshHintMs: 1_000,
      logger: silentLogger(),
      metrics: new Metrics(),
    });
    let replicaClosed = false;
    const closeReplica = async () => {
      if (replicaClosed) return;
      replicaClosed = true;
      await replica.close();
    };
    cleanups.push(closeReplica);
    await waitFor('the lagging replica bundle', () => holder.current?.bundle.roots.length === 1, 10_000);
    await closeReplica();

    // The new root is activated too soon for this agent; the operator updates its ca.bundle file (docs/ca.md step 2).
    await activateNextRoot(ca.dir);
    await ca.restart();
    const failedBefore = logs.filter((l) => l.msg === 'trust bundle refresh failed; keeping the current bundle').length;
    copyFileSync(ca.bundleFile, bundleFile);
    let recovered = true;
    try {
      await waitFor('the refresh to succeed through the file', () => holder.current?.bundle.roots.length === 2, 6_000);
    } catch {
      recovered = false;
    }
    const failedAfter = logs.filter((l) => l.msg === 'trust bundle refresh failed; keeping the current bundle').length;
    expect(recovered, `refreshes failed since the file update: ${failedAfter - failedBefore}`).toBe(true);
  }, 40_000);
});
