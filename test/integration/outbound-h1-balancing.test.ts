// Balancing over HTTP/1.1 to peers (`outbound.http2: false`): power of two choices compares requests in flight per
// endpoint, as it does for HTTP/2 streams. Two peers behind one DNS name (real dnsmasq), one that holds every
// request it gets and one that answers at once: once the slow one holds a request, the next ones go to the other.
// Before, HTTP/1.1 requests were not counted and every endpoint looked idle: half the requests queued at the slow one.
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type DnsServer, startDnsServer } from '../helpers/dns-server.js';
import {
  available,
  type ProxyResponse,
  startTestSidecar,
  type TestSidecar,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa, type TestSvid } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

interface Peer {
  readonly server: Server;
  received: number;
  /** Sockets with a request the peer has not answered yet (the slow peer answers on release). */
  readonly held: TLSSocket[];
}

const HAS_DNSMASQ = available('dnsmasq');
const REQUESTS = 30;

describe.skipIf(!HAS_DNSMASQ)('outbound HTTP/1.1 balancing', () => {
  let ca: TestCa;
  let dns: DnsServer;
  let caller: TestSidecar;
  let slow: Peer;
  let fast: Peer;
  const peerId = 'spiffe://example.org/ns/shop/sa/orders';

  /** A keep-alive HTTP/1.1 peer for bodiless GETs; `hold` keeps every answer until release(). */
  async function startPeer(host: string, svid: TestSvid, port: number, hold: boolean): Promise<Peer> {
    const server = createTlsServer({
      cert: svid.chainPem,
      key: svid.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
    });
    const peer: Peer = { server, received: 0, held: [] };
    server.on('secureConnection', (socket: TLSSocket) => {
      socket.on('error', () => undefined);
      let pending = '';
      socket.on('data', (data: Buffer) => {
        pending += data.toString('latin1');
        while (pending.includes('\r\n\r\n')) {
          pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
          peer.received += 1;
          if (hold) peer.held.push(socket);
          else socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${host.length}\r\n\r\n${host}`);
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return peer;
  }

  beforeAll(async () => {
    ca = await TestCa.create();
    const svid = await ca.issue({ id: peerId });
    // One port for both addresses (DNS carries no port): the first peer picks it, the second reuses it.
    slow = await startPeer('127.0.0.2', svid, 0, true);
    const port = (slow.server.address() as AddressInfo).port;
    fast = await startPeer('127.0.0.3', svid, port, false);
    dns = await startDnsServer({ 'orders.shop.test': ['127.0.0.2', '127.0.0.3'] });
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.1:0', app: '127.0.0.1:1' },
        outbound: {
          listen: '127.0.0.1:0',
          http2: false,
          routes: { 'orders.shop.test': { address: `orders.shop.test:${port}`, ids: [peerId] } },
          dns: { servers: [dns.address] },
        },
        admin: { listen: '127.0.0.1:0' },
      },
      'test-config',
    );
    caller = await startTestSidecar(ca, ca.idFor('/ns/front/sa/web'), config);
  });
  afterAll(async () => {
    await caller?.sidecar.close(0);
    for (const peer of [slow, fast]) {
      for (const socket of peer?.held ?? []) socket.destroy();
      await new Promise((resolve) => peer?.server.close(resolve));
    }
    await dns?.close();
  });

  it('fail/requests go to the endpoint with fewer in flight: the one holding a request gets no more', async () => {
    const answers: Promise<ProxyResponse>[] = [];
    for (let i = 0; i < REQUESTS; i += 1) {
      const fastBefore = fast.received;
      const answer = viaProxy(caller.sidecar.outboundPort, `http://orders.shop.test/r${i}`);
      answers.push(answer);
      // One at a time: the fast peer's answer is back, or the slow peer holds the request.
      await waitFor(`request ${i} reached a peer`, () => slow.received + fast.received === i + 1, 10_000);
      if (fast.received > fastBefore) await answer;
    }
    const heldBySlow = slow.received;
    for (const socket of slow.held) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n127.0.0.2');
    const statuses = (await Promise.all(answers)).map((res) => res.status);
    expect(statuses).toEqual(Array(REQUESTS).fill(200));
    // In flight counted: the slow peer holds one request, two if both picks happened before the first was counted.
    expect(heldBySlow).toBeLessThanOrEqual(2);
    expect(fast.received).toBeGreaterThanOrEqual(REQUESTS - 2);
  });
});
