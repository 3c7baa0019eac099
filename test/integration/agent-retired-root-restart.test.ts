// An agent remembers the roots the CA retired in memory only: its `ca.bundle` file is someone else's (a ConfigMap
// mounted read-only, a copy handed out at deploy time) and may still list the retired root. An agent restarted over
// that file used to trust the retired root for every renewal and bundle refresh after, not only until its first
// refresh: the CA's answers never list that root again, so nothing made the new agent remember it as dropped.
// Whoever held the retired root's key and took the CA's address then had the restarted agent take its bundle.
// Now the bootstrap judges the roots it trusted to reach the CA, the file's among them, against the bundle the CA
// answered with: one the CA no longer lists and older than one it keeps is retired, as for a running agent.
// Here the impersonator is the real CA started from a copy of its directory taken before the rotation.
import { copyFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, CredentialHolder } from '../../src/agent/index.js';
import { activateNextRoot, createJoinToken, publishNextRoot, startCaServer } from '../../src/ca/index.js';
import { BACKDATE_MS, type x509 } from '../../src/pki/index.js';
import { createLogger, Metrics, silentLogger } from '../../src/telemetry/index.js';
import { waitFor } from '../helpers/wait.js';
import {
  type AgentHarness,
  CaHarness,
  type Cleanup,
  type LogLine,
  retireRootAfterSnapshot,
  runCleanups,
  startAgent,
  TRUST_DOMAIN,
  WORKLOAD_ID,
} from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

const REFRESH_FAILED = 'trust bundle refresh failed; keeping the current bundle';

/** A new Agent instance over the same bundle and token files as `before` (a restarted sidecar). */
function restartAgent(
  ca: { readonly url: string },
  before: AgentHarness,
): { holder: CredentialHolder; logs: LogLine[]; agent: Agent } {
  const logs: LogLine[] = [];
  const holder = new CredentialHolder();
  const agent = new Agent({
    trustDomain: TRUST_DOMAIN,
    caUrl: ca.url,
    bundleFile: before.bundleFile,
    tokenFile: before.tokenFile,
    holder,
    logger: createLogger({ level: 'debug', destination: { write: (line: string) => logs.push(JSON.parse(line)) } }),
    metrics: new Metrics(),
    maxBackoffMs: 1_000,
    minBackoffMs: 200,
    bundleRefreshMs: 500,
  });
  cleanups.push(() => agent.close());
  agent.start();
  return { holder, logs, agent };
}

describe('agent restarted after the old root was retired', () => {
  it('fail/a CA serving a certificate under the retired root is refused, though the configured file still lists it', async () => {
    const ca = await CaHarness.start(6_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const first = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 500 });
    await first.agent.whenReady();
    const { snapshot, oldRoot } = await retireRootAfterSnapshot(ca, first, cleanups);
    await waitFor('the agent to hold only the new root', () => first.holder.current?.bundle.roots.length === 1, 15_000);
    const newRoot = first.holder.current?.bundle.roots[0] as x509.X509Certificate;
    // The file as the operator left it at step 2 of the rotation (both roots), not replaced at retirement.
    writeFileSync(
      first.bundleFile,
      `${(oldRoot as x509.X509Certificate).toString('pem')}\n${newRoot.toString('pem')}\n`,
    );
    writeFileSync(first.tokenFile, `${await ca.token()}\n`); // the first token was used
    await first.agent.close();

    const second = restartAgent(ca, first);
    await second.agent.whenReady();
    const held = second.holder.current?.bundle.toPem();
    expect(second.holder.current?.bundle.roots).toHaveLength(1);
    expect(second.holder.current?.bundle.hasRoot(newRoot)).toBe(true);
    // The operator is told the file is stale, once.
    expect(second.logs.filter((l) => l.event === 'bundle_file_retired_root')).toMatchObject([
      { level: 'warn', bundleFile: first.bundleFile, roots: 1 },
    ]);

    // The impersonator takes the CA's address.
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
    const failures = () => second.logs.filter((l) => l.msg === REFRESH_FAILED);
    const refused = () => failures().filter((l) => l.reason === 'tls').length;
    // Several refreshes went to the impersonator and were refused by TLS (or one took its bundle: the assertion says so).
    await waitFor(
      'two refused bundle refreshes from the impersonator',
      () => refused() >= 2 || second.holder.current?.bundle.toPem() !== held,
      10_000,
    );
    expect(second.holder.current?.bundle.toPem(), 'the restarted agent took the retired root back').toBe(held);
    // Besides those, only refreshes made while nothing listened at the address (the CA stopped, the impersonator not yet
    // started: a loaded machine takes more than a refresh interval between the two) may have failed.
    expect(
      failures()
        .filter((l) => l.reason !== 'tls')
        .map((l) => l.reason),
    ).toEqual(
      failures()
        .filter((l) => l.reason !== 'tls')
        .map(() => 'unreachable'),
    );
  }, 40_000);

  it('ok/restarted at a lagging replica that lacks the newer root, the file still lets it in after the activation', async () => {
    const ca = await CaHarness.start(120_000, cleanups, { bundleRefreshHintMs: 1_000 });
    const first = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 500 });
    await first.agent.whenReady();
    const lagging = mkdtempSync(join(tmpdir(), 'meshauth-lagging-ca-'));
    cleanups.push(() => rmSync(lagging, { recursive: true, force: true }));
    cpSync(ca.dir, lagging, { recursive: true }); // a replica whose Secret mount is not updated yet
    // Both roots' NotBefore in one second: the replica's missing root must still count as the newer one.
    const oldRoot = first.holder.current?.bundle.roots[0];
    await publishNextRoot(ca.dir, new Date((oldRoot?.notBefore.getTime() ?? 0) + BACKDATE_MS));
    copyFileSync(ca.bundleFile, first.bundleFile); // the operator hands out the bundle with both roots
    await first.agent.close();

    // The restarted agent bootstraps at the lagging replica (same address: behind one Service).
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
    writeFileSync(first.tokenFile, `${await createJoinToken({ dir: lagging, id: WORKLOAD_ID, ttlMs: 60_000 })}\n`);
    const second = restartAgent(ca, first);
    await second.agent.whenReady();
    expect(second.holder.current?.bundle.roots).toHaveLength(1);
    await closeReplica();

    // The new root is activated before this agent learned it from the CA; its file has it.
    await activateNextRoot(ca.dir);
    await ca.restart();
    await waitFor('a refresh through the file', () => second.holder.current?.bundle.roots.length === 2, 10_000);
    expect(second.logs.filter((l) => l.event === 'bundle_file_retired_root')).toHaveLength(0);
  }, 40_000);
});
