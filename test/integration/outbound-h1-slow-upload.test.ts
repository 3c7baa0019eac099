// Found by a review: ForwardHandler's head timer ran from dispatch to the response head, so on the HTTP/1.1 path
// an upload that is still being streamed when outbound.timeout runs out is answered 504 and aborted mid-body,
// although the peer is receiving it. undici's own headersTimeout (the only limit once a connection was free) is refreshed while the body is written and at its end; on HTTP/2 the same limit is the stream's idle
// timeout. So the HTTP/1.1 path now refuses any upload longer than outbound.timeout.
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSidecar, type TestSidecar, testConfig } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('HTTP/1.1 to a peer: an upload longer than outbound.timeout', () => {
  let ca: TestCa;
  let caller: TestSidecar;
  let peer: Server | undefined;

  beforeAll(async () => {
    ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const svid = await ca.issue({ id: peerId });
    peer = createHttpsServer(
      { cert: svid.chainPem, key: svid.keyPem, ca: ca.bundlePem, requestCert: true, ALPNProtocols: ['http/1.1'] },
      (req, res) => {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        req.on('end', () => res.end(`got ${bytes}`));
      },
    );
    await new Promise<void>((resolve) => peer?.listen(0, '127.0.0.1', resolve));
    const base = testConfig({
      appPort: 1,
      outboundTimeout: '1s',
      routes: { 'b.mesh': { address: `127.0.0.1:${(peer.address() as AddressInfo).port}`, ids: [peerId] } },
    });
    caller = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), {
      ...base,
      outbound: { ...base.outbound, http2: false },
    });
  });
  afterAll(async () => {
    await caller?.sidecar.close(0);
    peer?.closeAllConnections();
    await new Promise((resolve) => peer?.close(resolve));
  });

  it('fail/a POST streamed over 2 s (a chunk every 200 ms) reaches the peer and gets its answer', async () => {
    const port = caller.sidecar.outboundPort;
    const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: 'http://b.mesh/upload',
          headers: { host: 'b.mesh' },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      let n = 0;
      const timer = setInterval(() => {
        n += 1;
        if (req.destroyed) {
          clearInterval(timer);
          return;
        }
        if (n <= 10) req.write('x'.repeat(100));
        else {
          clearInterval(timer);
          req.end();
        }
      }, 200);
      setTimeout(() => {
        clearInterval(timer);
        req.destroy(new Error('no answer in 8 s'));
      }, 8_000).unref();
    });
    expect(result.status, result.body).toBe(200);
    expect(result.body).toBe('got 1000');
  }, 15_000);
});
