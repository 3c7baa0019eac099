// A sidecar whose SVID was issued under a root the CA then retired with `ca rotate --root --retire --force` (before
// the agent renewed under the new root): the CA refuses its renewals (401), peers refuse its certificate, and a used
// join token cannot bootstrap again. /readyz and /startupz must say so instead of answering 200 until the SVID
// expires, and the refused renewal's log line must say what to do.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { activateNextRoot, publishNextRoot, retirePreviousRoot } from '../../src/ca/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { BACKDATE_MS } from '../../src/pki/index.js';
import { startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { logLines } from '../helpers/log-lines.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, runCleanups, startAgent, TRUST_DOMAIN } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

const RETIRED =
  'SVID issued under a root the trust bundle no longer holds (retired by the CA): peers and the CA refuse it until a new bootstrap';

async function startApp(): Promise<number> {
  const app = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => app.close(() => resolve())));
  return (app.address() as { port: number }).port;
}

describe('/readyz after the root of the held SVID was retired', () => {
  it('fail/retired root under a valid SVID → /readyz and /startupz 503 naming it; the refused renewal logs a hint', async () => {
    // The SVID outlives the test; the agent refreshes the bundle every half second and pins its renewal to mid-life.
    const ca = await CaHarness.start(10 * 60_000, cleanups, { bundleRefreshHintMs: 500 });
    const agent = startAgent(ca, await ca.token(), cleanups, { bundleRefreshMs: 500, random: () => 0.5 });
    await agent.agent.whenReady();
    const appPort = await startApp();
    const config = sidecarConfigFromObject(
      {
        trustDomain: TRUST_DOMAIN.name,
        ca: { url: ca.url, bundle: agent.bundleFile, token: agent.tokenFile },
        inbound: { listen: '127.0.0.1:0', app: `127.0.0.1:${appPort}` },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      },
      'retired-root.yaml',
    );
    const sidecar = await startSidecar(config, {
      logger: logLines('sidecar').logger,
      metrics: new Metrics(),
      holder: agent.holder,
    });
    cleanups.push(() => sidecar.close(0));
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${sidecar.adminPort}${path}`);
      return { status: response.status, body: await response.text() };
    };
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ready\n' });

    // The whole root rotation at once, as `--retire --force` allows: the agent never renewed under the new root.
    const oldRoot = agent.holder.current?.bundle.roots[0];
    await publishNextRoot(ca.dir, new Date((oldRoot?.notBefore.getTime() ?? 0) + BACKDATE_MS));
    await waitFor('the agent to hold both roots', () => agent.holder.current?.bundle.roots.length === 2, 10_000);
    await activateNextRoot(ca.dir);
    await retirePreviousRoot(ca.dir, new Date(), true);
    await waitFor('the agent to hold only the new root', () => agent.holder.current?.bundle.roots.length === 1, 10_000);
    expect(agent.holder.current?.svid.remainingMs(new Date())).toBeGreaterThan(0);

    expect(await get('/readyz')).toEqual({ status: 503, body: `not ready: ${RETIRED}\n` });
    expect(await get('/startupz')).toEqual({ status: 503, body: `not started: ${RETIRED}\n` });
    expect(sidecar.ready()).toBe(false);

    const refused = await waitFor('a refused renewal logged', () =>
      agent.logs.find((line) => line.mode === 'renewal' && line.code === 'MESHAUTH_ERR_CA_UNAUTHENTICATED'),
    );
    expect(refused.hint).toBe(
      'the CA no longer accepts this SVID (its root was retired, for one); the agent tries a bootstrap ' +
        `with the token file ${agent.tokenFile} at its next attempt: a Kubernetes service-account token is re-issued by ` +
        'the kubelet and works as it is, a join token is single-use: write a new one ' +
        '(`meshauth ca token create --id <spiffe-id>`) to that file, no restart needed',
    );
    // The bootstrap that follows spends nothing (the join token was used at the start): its warning says why it ran.
    const spent = await waitFor('the used join token refused', () =>
      agent.logs.find((line) => line.level === 'warn' && line.tokenFile === agent.tokenFile),
    );
    expect(spent.msg).toContain('cannot bootstrap again after the CA refused to renew the current SVID;');
  }, 60_000);
});
