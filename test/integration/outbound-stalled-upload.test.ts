// The outbound's per-stream limit (outbound.timeout) on an upload the peer stops reading (no WINDOW_UPDATE):
// node:http2's stream timeout counts writes of the whole session, so while other requests shared the session the
// stalled upload never timed out and the app's request hung (found by an outside audit). H2Exchange now times a
// write that waits for 'drain' itself.
import { createSecureServer, type Http2SecureServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerServerTls, startRoutedSidecar, type TestSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

// Only a bound on a race below (the answer must come well before it), never a wait on its own.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('outbound h2: an upload the peer stops reading', () => {
  let peer: Http2SecureServer;
  let a: TestSidecar;
  const held: ServerHttp2Stream[] = [];

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = 'spiffe://example.org/ns/b/sa/b';
    const svid = await ca.issue({ id: peerId });
    peer = createSecureServer(peerServerTls(svid, ca));
    peer.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      if (headers[':path'] === '/upload') {
        held.push(stream); // never read (no WINDOW_UPDATE once its window is used), never answered
        stream.pause();
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end('pong');
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    a = await startRoutedSidecar(ca, (peer.address() as AddressInfo).port, peerId, { outboundTimeout: '1s' });
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    for (const s of held) s.destroy();
    peer?.close();
  });

  it('ok/alone, it is answered 504 after outbound.timeout', async () => {
    const res = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/upload', {
      method: 'POST',
      body: Buffer.alloc(1024 * 1024, 0x61),
    }).catch((e: Error) => ({ status: -1, body: e.message }));
    expect(res.status).toBe(504);
  });

  it('ok/it is answered 504 also while the app sends one GET every 300 ms to the same peer (it hung before)', async () => {
    let pings = 0;
    const keeper = setInterval(() => {
      void viaProxy(a.sidecar.outboundPort, 'http://b.mesh/ping').then(
        () => pings++,
        () => undefined,
      );
    }, 300);
    try {
      const outcome = await Promise.race([
        viaProxy(a.sidecar.outboundPort, 'http://b.mesh/upload', {
          method: 'POST',
          body: Buffer.alloc(1024 * 1024, 0x61),
        }).then(
          (r) => `status ${r.status}`,
          (e: Error) => `error ${e.message}`,
        ),
        sleep(8_000).then(() => 'still pending after 8 s'),
      ]);
      expect(outcome).toBe('status 504');
      expect(pings).toBeGreaterThan(0);
    } finally {
      clearInterval(keeper);
    }
  });
});
