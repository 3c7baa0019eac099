// The outbound's HTTP/1.1 path to a peer (`outbound.http2: false`, or a peer whose ALPN picks http/1.1): a burst is
// carried by a bounded number of keep-alive connections per endpoint, the rest wait in the pool, instead of one new
// TLS connection per request in flight (which runs into the peer inbound's per-caller share and gets 503s).
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('outbound HTTP/1.1 pool', () => {
  let ca: TestCa;
  let caller: TestSidecar;
  let peerServer: Server | undefined;
  let open = 0;
  let mostOpen = 0;
  let served = 0;

  beforeAll(async () => {
    ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const peer = await ca.issue({ id: peerId });
    // A keep-alive HTTP/1.1 peer that takes 100 ms per request and counts its open connections.
    const tls = createTlsServer({
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
    });
    tls.on('secureConnection', (socket: TLSSocket) => {
      open += 1;
      mostOpen = Math.max(mostOpen, open);
      socket.on('close', () => {
        open -= 1;
      });
      socket.on('error', () => undefined);
      let pending = '';
      socket.on('data', (data: Buffer) => {
        pending += data.toString('latin1');
        while (pending.includes('\r\n\r\n')) {
          pending = pending.slice(pending.indexOf('\r\n\r\n') + 4); // bodiless GETs only
          setTimeout(() => {
            served += 1;
            socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
          }, 100);
        }
      });
    });
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    peerServer = tls;
    const base = testConfig({
      appPort: 1,
      routes: { 'b.mesh': { address: `127.0.0.1:${(tls.address() as AddressInfo).port}`, ids: [peerId] } },
    });
    caller = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), {
      ...base,
      outbound: { ...base.outbound, http2: false },
    });
  });
  afterAll(async () => {
    await caller?.sidecar.close(0);
    await new Promise((resolve) => peerServer?.close(resolve));
  });

  it('fail/a burst of 100 requests uses at most 64 connections to the endpoint, and every request is answered', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => viaProxy(caller.sidecar.outboundPort, `http://b.mesh/${i}`)),
    );
    expect(statuses.map((res) => res.status)).toEqual(Array(100).fill(200));
    expect(served).toBe(100);
    expect(mostOpen).toBeGreaterThan(1);
    expect(mostOpen).toBeLessThanOrEqual(64);
  });
});
