// An ejected HTTP/1.1 endpoint's probe over a kept connection (found by a review): the pool keeps keep-alive
// connections, so when new connects fail while one connection stays up the endpoint is ejected, and when its probe
// is due the probe request may ride the surviving connection without any connect. Its answer must end the probe;
// it used to leave the endpoint out of the balancing for good.
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import { available, startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

describe.skipIf(!available('dnsmasq'))('HTTP/1.1 endpoint probe over a kept connection', () => {
  let ca: TestCa;
  let caller: TestSidecar;
  let dns: DnsServer;
  const servers: Server[] = [];
  const hits = { e1: 0, e2: 0 };
  let refuseE1 = false;
  let slowOnE1 = 0;
  let slowSeen = 0;

  beforeAll(async () => {
    ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const svid = await ca.issue({ id: peerId });
    const make = (name: 'e1' | 'e2') =>
      createHttpsServer(
        {
          cert: svid.chainPem,
          key: svid.keyPem,
          ca: ca.bundlePem,
          requestCert: true,
          ALPNProtocols: ['http/1.1'],
          keepAliveTimeout: 60_000,
        },
        (req, res) => {
          req.resume();
          req.on('end', () => {
            if (req.url === '/slow') {
              slowSeen += 1;
              if (name === 'e1') slowOnE1 += 1;
              setTimeout(() => res.end('slow'), 2_500);
              return;
            }
            hits[name] += 1;
            res.end(name);
          });
        },
      );
    const e1 = make('e1');
    e1.on('connection', (socket: Socket) => {
      if (refuseE1) socket.destroy();
    });
    await new Promise<void>((resolve) => e1.listen(0, '127.0.0.2', resolve));
    const port = (e1.address() as AddressInfo).port;
    const e2 = make('e2');
    await new Promise<void>((resolve) => e2.listen(port, '127.0.0.3', resolve));
    servers.push(e1, e2);
    dns = await startDnsServer({ 'b.shop.test': ['127.0.0.2', '127.0.0.3'] }, 60);
    const base = testConfig({ appPort: 1 });
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: {
          listen: '127.0.0.1:0',
          http2: false,
          routes: { 'b.mesh': { address: `b.shop.test:${port}`, ids: [peerId] } },
          dns: { servers: [dns.address] },
        },
        admin: { listen: '127.0.0.1:0' },
      },
      base.source,
    );
    caller = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), config);
  });
  afterAll(async () => {
    await caller?.sidecar.close(0);
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
    await dns?.close();
  });

  it('fail/after its probe succeeds, a recovered endpoint takes requests again', async () => {
    const port = caller.sidecar.outboundPort;
    // A: one connection of E1's pool busy with a slow request (kept alive afterwards).
    const slow: Promise<unknown>[] = [];
    for (let i = 0; i < 20 && slowOnE1 === 0; i += 1) {
      const landed = slowSeen;
      slow.push(viaProxy(port, 'http://b.mesh/slow'));
      await waitFor('the slow request at an endpoint', () => slowSeen > landed);
    }
    expect(slowOnE1).toBeGreaterThan(0);
    // B: new connections to E1 fail (reset in the handshake) until E1 is ejected; each such request is retried on E2.
    // Four at a time: the balancer counts E1's slow request, so one request at a time would always pick the idle E2.
    refuseE1 = true;
    const metric = () => caller.metrics.registry.getSingleMetricAsString('meshauth_endpoint_ejections_total');
    for (let i = 0; i < 40 && !/\} [1-9]/.test(await metric()); i += 1) {
      const batch = await Promise.all(Array.from({ length: 4 }, () => viaProxy(port, 'http://b.mesh/fast')));
      expect(batch.map((res) => res.status)).toEqual([200, 200, 200, 200]);
    }
    expect(await metric()).toMatch(/meshauth_endpoint_ejections_total\{route="b\.mesh"\} 1/);
    // C: E1 recovers; its slow request ends and its connection stays open; the 1 s ejection runs out.
    refuseE1 = false;
    await Promise.all(slow);
    // A fixed wait on purpose: the 1 s ejection runs on the balancer's own clock, with nothing to observe until then.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    // D: E1 serves again (the probe succeeds), so it should be back in the balancing.
    hits.e1 = 0;
    hits.e2 = 0;
    for (let i = 0; i < 30; i += 1) expect((await viaProxy(port, 'http://b.mesh/fast')).status).toBe(200);
    expect(hits.e1, `e1 ${hits.e1}, e2 ${hits.e2}`).toBeGreaterThan(3);
    expect(await caller.metrics.registry.getSingleMetricAsString('meshauth_endpoints')).toMatch(
      /meshauth_endpoints\{route="b\.mesh",state="ejected"\} 0/,
    );
  }, 30_000);
});
