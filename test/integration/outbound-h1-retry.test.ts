// The outbound's HTTP/1.1 path retries what the peer never processed, as the HTTP/2 path does: a failed connect
// (for every method, on another endpoint, and the dead endpoint is ejected), and a connection lost before the
// response head for a bodiless GET. A POST whose connection died after it was written is never sent twice.
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import { eachWholeRequest } from '../helpers/raw-requests.js';
import { available, startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';

describe('outbound HTTP/1.1 retries', () => {
  let ca: TestCa;
  let peer: TestSvid;
  const peerId = 'spiffe://example.org/ns/b/sa/b';
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    peer = await ca.issue({ id: peerId });
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
  });

  async function caller(outbound: Record<string, unknown>): Promise<TestSidecar> {
    const base = testConfig({ appPort: 1 });
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: { listen: '127.0.0.1:0', http2: false, ...outbound },
        admin: { listen: '127.0.0.1:0' },
      },
      base.source,
    );
    const started = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), config);
    closers.push(() => started.sidecar.close(0));
    return started;
  }

  /** An HTTP/1.1-only peer; `answer` gets each request head with its index and the socket it came on. */
  async function scriptedPeer(answer: (socket: TLSSocket, head: string, index: number) => void): Promise<string[]> {
    const heads: string[] = [];
    const server: Server = createTlsServer({
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      socket.on('error', () => undefined);
      eachWholeRequest(socket, (head) => {
        heads.push(head);
        answer(socket, head, heads.length - 1);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    (heads as string[] & { port?: number }).port = port;
    return heads;
  }
  const portOf = (heads: string[]) => (heads as string[] & { port: number }).port;
  const ok = (socket: TLSSocket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  const route = (port: number) => ({ routes: { 'b.mesh': { address: `127.0.0.1:${port}`, ids: [peerId] } } });

  it('fail/a GET whose connection is lost before the response head is sent again once, and answered', async () => {
    const heads = await scriptedPeer((socket, _head, index) => (index === 0 ? socket.destroy() : ok(socket)));
    const a = await caller(route(portOf(heads)));
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/get');
    expect(res.status).toBe(200);
    expect(heads).toHaveLength(2);
    expect(await a.metrics.registry.getSingleMetricAsString('meshauth_request_retries_total')).toMatch(
      /meshauth_request_retries_total\{direction="outbound",reason="connection_lost"\} 1/,
    );
  });

  it('ok/a POST whose connection is lost after it was written is answered 503 and never sent twice', async () => {
    const heads = await scriptedPeer((socket) => socket.destroy());
    const a = await caller(route(portOf(heads)));
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/pay', { method: 'POST', body: 'x' });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
    expect(heads).toHaveLength(1);
  });

  it('ok/a single endpoint that refuses connections: 503 after one retry, for a GET and a POST', async () => {
    const heads = await scriptedPeer(ok);
    const port = portOf(heads);
    const a = await caller(route(port));
    // Nothing listens on 127.0.0.4 at that port.
    const down = await caller({ routes: { 'b.mesh': { address: `127.0.0.4:${port}`, ids: [peerId] } } });
    for (const options of [{}, { method: 'POST', body: 'x' }]) {
      const res = await viaProxy(down.sidecar.outboundPort, 'http://b.mesh/down', options);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_PEER_UNAVAILABLE');
    }
    expect(await down.metrics.registry.getSingleMetricAsString('meshauth_request_retries_total')).toMatch(
      /meshauth_request_retries_total\{direction="outbound",reason="connect"\} 2/,
    );
    // The process and the pool are fine: the route to a live peer still works.
    expect((await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/up')).status).toBe(200);
  });

  it.skipIf(!available('dnsmasq'))(
    'fail/with one of two endpoints refusing connections, every request (GETs and POSTs) is answered by the live one, and the dead one is ejected',
    async () => {
      let served = 0;
      const tls = { cert: peer.chainPem, key: peer.keyPem, ca: ca.bundlePem, requestCert: true };
      const live: Http2SecureServer = createSecureServer({ ...tls, allowHTTP1: true }, (req, res) => {
        req.resume();
        req.on('end', () => {
          served += 1;
          res.end('live');
        });
      });
      await new Promise<void>((resolve) => live.listen(0, '127.0.0.2', resolve));
      const port = (live.address() as AddressInfo).port; // nothing listens on 127.0.0.3 at that port
      const dns: DnsServer = await startDnsServer({ 'b.shop.test': ['127.0.0.2', '127.0.0.3'] });
      closers.push(async () => {
        await new Promise((resolve) => live.close(resolve));
        await dns.close();
      });
      const a = await caller({
        routes: { 'b.mesh': { address: `b.shop.test:${port}`, ids: [peerId] } },
        dns: { servers: [dns.address] },
      });
      const statuses: number[] = [];
      for (let i = 0; i < 20; i += 1) {
        const post = i % 2 === 1;
        const res = await viaProxy(
          a.sidecar.outboundPort,
          `http://b.mesh/r${i}`,
          post ? { method: 'POST', body: 'x' } : {},
        );
        statuses.push(res.status);
      }
      expect(statuses).toEqual(Array(20).fill(200));
      expect(served).toBe(20);
      expect(await a.metrics.registry.getSingleMetricAsString('meshauth_endpoint_ejections_total')).toMatch(
        /meshauth_endpoint_ejections_total\{route="b\.mesh"\} [1-9]/,
      );
    },
  );
});
