// `meshauth sidecar --config FILE` as a user runs it: it bootstraps from a real CA with a join token, becomes ready,
// serves, and on SIGTERM finishes the slow request in flight before exiting 0 — as soon as it is done, not when the
// drain timeout runs out (the client sidecar keeps its h2 session open; the server must close it once idle).
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { startSidecar } from '../../src/sidecar/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { freePort } from '../helpers/free-port.js';
import { MAIN } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup } from '../integration/agent-harness.js';

const cleanups: Cleanup[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('meshauth sidecar (the built CLI)', () => {
  it('ok/bootstraps from the CA, then SIGTERM lets the in-flight slow request complete and exits 0', async () => {
    const ca = await CaHarness.start(3600_000, cleanups);
    // The slow app behind the CLI sidecar answers after 1.5 s.
    let appRequests = 0;
    const app = createServer((_req, res) => {
      appRequests += 1;
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow ok'), 1500);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => app.close(() => resolve())));

    const tokenFile = join(ca.dir, 'b.token');
    writeFileSync(tokenFile, await ca.token('spiffe://example.org/ns/shop/sa/b'));
    const [inboundPort, outboundPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const configFile = join(ca.dir, 'b.yaml');
    writeFileSync(
      configFile,
      [
        'trustDomain: example.org',
        `ca: { url: "${ca.url}", bundle: "${ca.bundleFile}", token: "${tokenFile}" }`,
        `inbound: { listen: "127.0.0.1:${inboundPort}", app: "127.0.0.1:${(app.address() as AddressInfo).port}" }`,
        `outbound: { listen: "127.0.0.1:${outboundPort}" }`,
        `admin: { listen: "127.0.0.1:${adminPort}" }`,
        // Far beyond the test's timeout: an exit within it proves the drain ended when the last request finished.
        'drainTimeout: 120s',
      ].join('\n'),
    );
    const child: ChildProcess = spawn(process.execPath, [MAIN, 'sidecar', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitFor(
      'the CLI sidecar to be ready',
      async () => {
        const response = await request(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
        await response?.body.dump();
        return response?.statusCode === 200;
      },
      20_000,
      100,
    ).catch((error: Error) => {
      throw new Error(`${error.message} (stderr: ${stderr.slice(-500)})`);
    });

    // A client sidecar in this process calls the CLI sidecar.
    const clientToken = join(ca.dir, 'a.token');
    writeFileSync(clientToken, await ca.token('spiffe://example.org/ns/shop/sa/a'));
    const client = await startSidecar(
      sidecarConfigFromObject(
        {
          trustDomain: 'example.org',
          ca: { url: ca.url, bundle: ca.bundleFile, token: clientToken },
          inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
          outbound: { listen: '127.0.0.1:0', routes: { 'b.mesh': { address: `127.0.0.1:${inboundPort}` } } },
          admin: { listen: '127.0.0.1:0' },
        },
        'sigterm-client',
      ),
      { logger: silentLogger(), metrics: new Metrics() },
    );
    cleanups.push(() => client.close(0));
    await waitFor('the client sidecar to be ready', () => client.ready(), 15_000, 100);

    const slow = request(`http://127.0.0.1:${client.outboundPort}/slow`, { headers: { host: 'b.mesh' } });
    await waitFor('the request to wait on the slow app', () => appRequests === 1);
    child.kill('SIGTERM');
    const response = await slow;
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('slow ok');
    // Bounded by the test's 60 s timeout, far below the 120 s drainTimeout: a drain that waited for the timeout
    // would fail here with "exited: timeout" (the client sidecar is still running and holds its h2 session).
    const outcome = await Promise.race([
      exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref()),
    ]);
    expect(outcome, `exited: ${String(outcome)} (stderr: ${stderr.slice(-500)})`).toBe(0);
    expect(stderr + stdout).toContain('sidecar stopped');
  }, 60_000);
});
