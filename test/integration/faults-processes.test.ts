// Fault injection on real processes (the built CLI, `dist/src/cli/main.js`): the peer sidecar is SIGKILLed in the
// middle of a streamed response and started again on the same port; the CA is SIGKILLed while a group of agents
// renews 20-second SVIDs and comes back. Each case asserts what the client sees, the metric, the log line, that
// the surviving processes did not crash, and recovery without restarting them.
// The two cases share nothing (each its own CA, ports and processes) and mostly wait, one on process starts, the
// other on renewals at half of an SVID's life: they run side by side, taking `expect` from their context.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createJoinToken, initCa } from '../../src/ca/index.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type CliProcess, freePort, spawnCli as spawnCliProcess, waitForCli } from '../helpers/cli-process.js';
import { captureLogger } from '../helpers/fault-harness.js';
import { MAIN } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent, TRUST_DOMAIN } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterAll(() => runCleanups(cleanups));

/** The built CLI as a child process, killed by the suite's cleanups. */
const spawnCli = (args: readonly string[]): CliProcess => spawnCliProcess(args, cleanups);

// The suite's global setup builds dist/; only its presence is checked here (sources may be newer while others edit).
beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\``);
});

describe.concurrent('the peer sidecar process is killed mid-stream and restarted', () => {
  let ca: CaHarness;
  let app: Server;
  let client: RunningSidecar;
  const clientLog = captureLogger('sidecar');
  const clientMetrics = new Metrics();
  let inboundPort: number;
  let adminPort: number;
  let config: string;
  const dispatcher = new Agent();

  async function startPeer(): Promise<CliProcess> {
    const token = join(ca.dir, `b-${Date.now()}.token`);
    writeFileSync(token, await ca.token('spiffe://example.org/ns/faults/sa/b'), { mode: 0o600 });
    writeFileSync(
      config,
      [
        'trustDomain: example.org',
        `ca: { url: "${ca.url}", bundle: "${ca.bundleFile}", token: "${token}" }`,
        `inbound: { listen: "127.0.0.1:${inboundPort}", app: "127.0.0.1:${(app.address() as { port: number }).port}" }`,
        // Never the default 15001: another CLI sidecar in the parallel suite may hold it.
        'outbound: { listen: "127.0.0.1:0" }',
        `admin: { listen: "127.0.0.1:${adminPort}" }`,
      ].join('\n'),
    );
    const peer = spawnCli(['sidecar', '--config', config]);
    // Generous: a process start (module loading, bootstrap) under a full parallel suite on two cores took over 20 s.
    await waitForCli(
      peer,
      'the CLI peer sidecar to be ready',
      async () => (await request(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.statusCode === 200,
      60_000,
    );
    return peer;
  }

  beforeAll(async () => {
    ca = await CaHarness.start(3600_000, cleanups);
    // /stream sends a chunk every 100 ms for 20 s: long enough to be killed in the middle.
    app = createServer((req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`chunk ${n++}\n`);
          if (n === 200) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          app.closeAllConnections();
          app.close(() => resolve());
        }),
    );
    [inboundPort, adminPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-faults-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    config = join(dir, 'b.yaml');
    const clientToken = join(dir, 'a.token');
    writeFileSync(clientToken, await ca.token('spiffe://example.org/ns/faults/sa/a'), { mode: 0o600 });
    client = await startSidecar(
      sidecarConfigFromObject(
        {
          trustDomain: 'example.org',
          ca: { url: ca.url, bundle: ca.bundleFile, token: clientToken },
          inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
          outbound: {
            listen: '127.0.0.1:0',
            routes: { 'b.mesh': { address: `127.0.0.1:${inboundPort}`, ids: ['spiffe://example.org/ns/faults/sa/b'] } },
          },
          admin: { listen: '127.0.0.1:0' },
        },
        'faults-client',
      ),
      { logger: clientLog.logger, metrics: clientMetrics },
    );
    cleanups.push(() => client.close(0));
    cleanups.push(() => dispatcher.close());
    await waitFor('the client sidecar to be ready', () => client.ready(), 20_000);
  });

  it('fail/SIGKILL mid-stream cuts the response (never a clean end); 503 while down; served again after restart', async ({
    expect,
  }) => {
    const peer = await startPeer();
    const call = (path: string) =>
      request(`http://127.0.0.1:${client.outboundPort}${path}`, { headers: { host: 'b.mesh' }, dispatcher });
    expect((await call('/ok')).statusCode).toBe(200);

    const streaming = await call('/stream');
    expect(streaming.statusCode).toBe(200);
    let received = '';
    const body = (async () => {
      for await (const chunk of streaming.body) received += chunk.toString();
    })();
    await waitFor('a few chunks', () => received.includes('chunk 3'), 10_000);
    process.kill(peer.child.pid as number, 'SIGKILL');
    await expect(body).rejects.toThrow();
    expect(received).not.toContain('chunk 199');
    expect(await peer.exited).toMatchObject({ signal: 'SIGKILL' });

    // While the peer is down: a fast, coded 503 from the client sidecar, counted and logged.
    const down = await call('/ok');
    expect(down.statusCode).toBe(503);
    expect(JSON.parse(await down.body.text()).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
    const rejected = await clientMetrics.registry.getSingleMetricAsString('meshauth_requests_rejected_total');
    expect(rejected).toContain('code="MESHAUTH_ERR_PEER_UNAVAILABLE"');
    const warnings = clientLog.records().filter((r) => r.level === 'warn' || r.level === 'error');
    expect(warnings.some((r) => /peer/i.test(String(r.msg)))).toBe(true);

    // The peer comes back on the same port with a new SVID; the client sidecar recovers on its own.
    const again = await startPeer();
    const recovered = await waitFor(
      'the client sidecar to reach the restarted peer',
      async () => {
        const res = await call('/ok');
        const text = await res.body.text();
        return res.statusCode === 200 && text === 'ok' ? true : undefined;
      },
      15_000,
    );
    expect(recovered).toBe(true);
    expect(client.ready()).toBe(true);
    process.kill(again.child.pid as number, 'SIGTERM');
    expect((await again.exited).code).toBe(0);
  }, 150_000);
});

describe.concurrent('the CA process is killed during a renewal storm and comes back', () => {
  it('ok/agents keep their SVIDs while it is down, count the failures and all renew once it is back', async ({
    expect,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-faults-ca-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const caDir = join(dir, 'ca');
    // The directory is made in this process, as `ca init` makes it (its own tests cover the command): the process
    // under test is `ca serve`, and one process start less on a busy machine is a second or two off every run.
    await initCa({ dir: caDir, trustDomain: TRUST_DOMAIN });
    const port = await freePort();
    const serve = () => spawnCli(['ca', 'serve', '--dir', caDir, '--listen', `127.0.0.1:${port}`, '--svid-ttl', '20s']);
    let ca = serve();
    const url = `https://127.0.0.1:${port}`;
    const bundleFile = join(caDir, 'bundle.pem');
    await waitForCli(ca, 'the CA to listen', () => ca.output().includes('listening') || undefined, 20_000);

    // Eight agents renewing 20-second SVIDs (a renewal every ~10 s each); the CA stays down for less than an SVID's
    // remaining life, since an expired SVID cannot renew without a new join token. The first renewals, and so the
    // first failures, come at half of that life: a longer one only makes the test wait longer for them.
    // Their join tokens are written in this process, as `ca token create` does (its own tests cover the command):
    // eight more process starts on a busy machine spread the agents over many seconds that every later wait pays for.
    const agents: ReturnType<typeof startAgent>[] = [];
    for (let i = 0; i < 8; i++) {
      const token = await createJoinToken({
        dir: caDir,
        id: `spiffe://example.org/ns/storm/sa/w${i}`,
        ttlMs: 10 * 60_000,
      });
      agents.push(startAgent({ url, bundleFile }, token, cleanups));
    }
    for (const a of agents) await waitFor('the first SVID', () => a.holder.current, 20_000);
    await waitFor(
      'a first round of renewals',
      async () => {
        for (const a of agents) if ((await rotations(a.metrics, 'success')) < 1) return false;
        return true;
      },
      45_000,
    );

    // Kill the CA in the middle of the storm; keep it down for longer than one renewal interval.
    process.kill(ca.child.pid as number, 'SIGKILL');
    expect(await ca.exited).toMatchObject({ signal: 'SIGKILL' });
    const serialsAtKill = agents.map((a) => a.holder.current?.svid.leaf.serialNumber);
    const failuresAtKill = await Promise.all(agents.map((a) => rotations(a.metrics, 'failure')));
    // Restart as soon as the first agent has failed a renewal: every other agent still holds at least ~half an SVID
    // lifetime (20 s SVIDs renew at about 10 s left, each retry a second or less apart), so a restart slowed by a busy
    // machine by several seconds costs nobody its SVID.
    await waitFor(
      'a renewal failure to be counted while the CA is down',
      async () => {
        const failures = await Promise.all(agents.map((a) => rotations(a.metrics, 'failure')));
        return failures.some((n, i) => n > (failuresAtKill[i] as number));
      },
      30_000,
    );
    // Nobody dropped the SVID it holds: a failed renewal keeps the old one.
    for (const a of agents) expect(a.holder.current).toBeDefined();
    expect(agents.some((a) => a.logs.some((l) => l.level === 'warn' || l.level === 'error'))).toBe(true);

    ca = serve();
    await waitForCli(ca, 'the CA to listen again', () => ca.output().includes('listening') || undefined, 20_000);
    const stale = () => agents.filter((a, i) => a.holder.current?.svid.leaf.serialNumber === serialsAtKill[i]);
    await waitForCli(
      ca,
      'every agent to renew from the restarted CA',
      () => stale().length === 0 || undefined,
      45_000,
    ).catch((error: Error) => {
      const last = stale()[0]?.logs.slice(-4);
      throw new Error(
        `${error.message}\n${stale().length} agent(s) without a new SVID; one's last log lines: ${JSON.stringify(last)}`,
      );
    });
    for (const a of agents) expect(a.holder.current?.svid.leaf.notAfter.getTime()).toBeGreaterThan(Date.now());
    process.kill(ca.child.pid as number, 'SIGTERM');
    expect((await ca.exited).code).toBe(0);
  }, 200_000);
});
