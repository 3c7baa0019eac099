// What of a peer's HTTP/2 response head reaches the app through the outbound: not its identity headers, and not the
// hop-by-hop headers HTTP/2 lets through. A peer's Proxy-Authenticate reached the app, whose HTTP client reads it
// as its proxy (the sidecar) asking for credentials (noted by an outside audit).
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerServerTls, startRoutedSidecar, type TestSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('outbound h2: the response head the app receives', () => {
  let peer: Http2SecureServer;
  let sidecar: TestSidecar;

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = 'spiffe://example.org/ns/b/sa/b';
    const svid = await ca.issue({ id: peerId });
    peer = createSecureServer(peerServerTls(svid, ca));
    peer.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.respond({
        ':status': 200,
        'proxy-authenticate': 'Basic realm="peer"',
        'x-meshauth-user': 'forged',
        'x-forwarded-client-cert': 'By=x;URI=spiffe://example.org/ns/evil/sa/x',
        'x-kept': 'yes',
      });
      stream.end('pong');
    });
    await new Promise<void>((done) => peer.listen(0, '127.0.0.1', done));
    sidecar = await startRoutedSidecar(ca, (peer.address() as AddressInfo).port, peerId);
  });
  afterAll(async () => {
    await sidecar?.sidecar.close(0);
    peer?.close();
  });

  it('fail/Proxy-Authenticate and identity headers from the peer stop at the sidecar; other headers pass', async () => {
    const res = await viaProxy(sidecar.sidecar.outboundPort, 'http://b.mesh/');
    expect(res.status).toBe(200);
    expect(res.body).toBe('pong');
    expect(res.headers['x-kept']).toBe('yes');
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    expect(res.headers['x-meshauth-user']).toBeUndefined();
    expect(res.headers['x-forwarded-client-cert']).toBeUndefined();
  });
});
