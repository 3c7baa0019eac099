// The outbound reuses one HTTP/2 session per peer endpoint; it used to keep sending requests on a session whose
// peer certificate had expired since the handshake (noted by an outside audit). The session is now closed at the
// peer's notAfter (gracefully), and the next request needs a new handshake, which an expired certificate fails.
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const SVID_TTL_MS = 2_500;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe('outbound h2: a peer whose certificate expires while its session is open', () => {
  let peer: Http2SecureServer;
  let sidecar: TestSidecar;
  let notAfter: number;
  /** When each request reached the peer. */
  const arrivals: number[] = [];

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = 'spiffe://example.org/ns/b/sa/b';
    const svid = await ca.issue({ id: peerId, ttlMs: SVID_TTL_MS });
    notAfter = svid.leaf.notAfter.getTime();
    peer = createSecureServer({
      cert: svid.chainPem,
      key: svid.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    peer.on('stream', (stream) => {
      arrivals.push(Date.now());
      stream.on('error', () => undefined);
      stream.respond({ ':status': 200 });
      stream.end('pong');
    });
    await new Promise<void>((done) => peer.listen(0, '127.0.0.1', done));
    sidecar = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({
        appPort: 1,
        routes: { 'b.mesh': { address: `127.0.0.1:${(peer.address() as AddressInfo).port}`, ids: [peerId] } },
      }),
    );
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    peer?.close();
  });

  it('fail/after the notAfter no request reaches the peer on the old session; the caller gets 503', async () => {
    expect((await viaProxy(sidecar.sidecar.outboundPort, 'http://b.mesh/')).status).toBe(200);
    let status = 200;
    // Keep the session busy until a request fails, bounded (well past the notAfter).
    for (let i = 0; i < 40 && status === 200; i++) {
      await sleep(200);
      status = (await viaProxy(sidecar.sidecar.outboundPort, 'http://b.mesh/')).status;
    }
    expect(status).toBe(503);
    expect(Date.now()).toBeGreaterThanOrEqual(notAfter);
    expect(Math.max(...arrivals)).toBeLessThan(notAfter + 100);
  });
});
