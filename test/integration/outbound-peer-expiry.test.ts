// The outbound reuses its connections to a peer endpoint: one HTTP/2 session, or the kept-alive connections of the
// HTTP/1.1 pool (`outbound.http2: false`, or a peer that answers ALPN with http/1.1). It used to keep sending
// requests on them after the peer's certificate had expired since the handshake (noted by an outside audit; the
// HTTP/1.1 pool by a review of the first fix). Now the session is closed and the pool retired at the peer's
// notAfter, and the next request needs a new handshake, which an expired certificate fails.
import { createSecureServer } from 'node:http2';
import { createServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PEER_HOST,
  peerServerTls,
  startRoutedSidecar,
  type TestSidecar,
  viaProxy,
} from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const SVID_TTL_MS = 2_500;

describe.each([
  ['HTTP/2 session', 'h2'],
  ['HTTP/1.1 pool', 'http/1.1'],
] as const)('outbound %s: a peer whose certificate expires while the connection is open', (_name, alpn) => {
  let peer: Server;
  let sidecar: TestSidecar;
  let notAfter: number;
  /** When each request reached the peer. */
  const arrivals: number[] = [];
  let handshakes = 0;

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = 'spiffe://example.org/ns/b/sa/b';
    const svid = await ca.issue({ id: peerId, ttlMs: SVID_TTL_MS });
    notAfter = svid.leaf.notAfter.getTime();
    const tls = peerServerTls(svid, ca);
    if (alpn === 'h2') {
      const server = createSecureServer(tls);
      server.on('stream', (stream) => {
        arrivals.push(Date.now());
        stream.on('error', () => undefined);
        stream.respond({ ':status': 200 });
        stream.end('pong');
      });
      peer = server;
    } else {
      peer = createServer({ ...tls, ALPNProtocols: ['http/1.1'] }, (req, res) => {
        arrivals.push(Date.now());
        req.resume();
        res.end('pong');
      });
    }
    peer.on('secureConnection', () => handshakes++);
    await new Promise<void>((done) => peer.listen(0, '127.0.0.1', done));
    sidecar = await startRoutedSidecar(ca, (peer.address() as AddressInfo).port, peerId);
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    peer?.close();
  });

  it('fail/after the notAfter no request reaches the peer on the old connection; the caller gets 503', async () => {
    const url = `http://${PEER_HOST}/`;
    expect((await viaProxy(sidecar.sidecar.outboundPort, url)).status).toBe(200);
    // Keep the connection busy until a request fails, bounded (well past the notAfter).
    const status = await waitFor(
      'a request that is not answered 200',
      async () => {
        const { status } = await viaProxy(sidecar.sidecar.outboundPort, url);
        return status === 200 ? undefined : status;
      },
      8_000,
      200,
    );
    expect(status).toBe(503);
    expect(Date.now()).toBeGreaterThanOrEqual(notAfter);
    expect(Math.max(...arrivals)).toBeLessThan(notAfter + 100);
    expect(handshakes).toBe(1);
  });
});
