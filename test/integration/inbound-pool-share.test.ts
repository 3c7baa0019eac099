// One caller with more requests in flight than its share of the app pool (75 % of inbound.limits.appConnections)
// is slowed, not failed: its further requests wait for one of its own to finish, and the app never sees more of
// its connections than the share. (A gateway in front of one service is exactly such a caller.)
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2GetStatus, mtlsH2Session } from '../helpers/raw-app.js';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

describe('app pool share of one peer', () => {
  let ca: TestCa;
  let server: Server;
  let sidecar: TestSidecar;
  let open = 0;
  let peak = 0;
  const held: (() => void)[] = [];

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    // Answers only when released, so the test decides how many requests are in flight at the app.
    server = createServer((_req, res) => {
      held.push(() => res.end('ok'));
    });
    server.on('connection', (socket: Socket) => {
      open++;
      peak = Math.max(peak, open);
      socket.on('close', () => open--);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const appPort = (server.address() as AddressInfo).port;
    sidecar = await startTestSidecar(ca, ca.idFor('/ns/shop/sa/b'), testConfig({ appPort }), {
      inboundLimits: { appConnections: 4, maxConcurrentStreams: 50 },
    });
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('ok/twelve concurrent requests of one caller all get 200 through three app connections', async () => {
    const caller = await ca.issue({ id: ca.idFor('/ns/edge/sa/gateway') });
    const session = await mtlsH2Session(sidecar.sidecar.inboundPort, caller, ca.bundlePem);
    const statuses = Array.from({ length: 12 }, () => h2GetStatus(session));
    // Release answers as they arrive until all twelve are done (bounded: each round releases what waits).
    const all = Promise.all(statuses);
    let done = false;
    void all.then(() => {
      done = true;
    });
    await waitFor(
      'all twelve answered',
      () => {
        expect(held.length).toBeLessThanOrEqual(3); // floor(4 × 0.75): the caller's share
        for (const release of held.splice(0)) release();
        return done;
      },
      2_000,
      10,
    );
    expect(await all).toEqual(Array(12).fill(200));
    // Connections: the caller's three plus at most one readiness probe (a TCP connect without a request).
    expect(peak).toBeLessThanOrEqual(4);
    session.close();
  });
});
