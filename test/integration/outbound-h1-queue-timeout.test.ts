// A request waiting for one of the HTTP/1.1 pool's 64 connections to an endpoint (found by a review): undici's
// headersTimeout starts only once a request is written, so a queued request had no limit at all; with 64 responses
// streaming (long polls, SSE, downloads) the 65th waited for one of them to end. `outbound.timeout` is the time a
// peer has to send the response head, queue included: past it the app gets 504 and the request is never sent.
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('HTTP/1.1 pool queue and outbound.timeout', () => {
  let ca: TestCa;
  let caller: TestSidecar;
  let peerServer: Server | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const paths: string[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const peer = await ca.issue({ id: peerId });
    const tls = createTlsServer({
      cert: peer.chainPem,
      key: peer.keyPem,
      ca: ca.bundlePem,
      requestCert: true,
      ALPNProtocols: ['http/1.1'],
    });
    tls.on('secureConnection', (socket: TLSSocket) => {
      socket.on('error', () => undefined);
      let pending = '';
      socket.on('data', (data: Buffer) => {
        pending += data.toString('latin1');
        while (pending.includes('\r\n\r\n')) {
          const head = pending.slice(0, pending.indexOf('\r\n\r\n'));
          pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
          paths.push(head.split(' ')[1] ?? '');
          if (head.startsWith('GET /stream')) {
            // A head at once, then a chunk every 200 ms for 4 s (active within the body timeout).
            socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
            let n = 0;
            const timer = setInterval(() => {
              n += 1;
              if (n < 20) socket.write('1\r\nx\r\n');
              else {
                clearInterval(timer);
                timers.delete(timer);
                socket.write('0\r\n\r\n');
              }
            }, 200);
            timers.add(timer);
          } else {
            socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
          }
        }
      });
    });
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    peerServer = tls;
    const base = testConfig({
      appPort: 1,
      outboundTimeout: '1s',
      routes: { 'b.mesh': { address: `127.0.0.1:${(tls.address() as AddressInfo).port}`, ids: [peerId] } },
    });
    caller = await startTestSidecar(ca, ca.idFor('/ns/a/sa/a'), {
      ...base,
      outbound: { ...base.outbound, http2: false },
    });
  });
  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    await caller?.sidecar.close(0);
    await new Promise((resolve) => peerServer?.close(resolve));
  });

  it('fail/with 64 responses streaming, another request gets 504 after outbound.timeout and is never sent', async () => {
    const port = caller.sidecar.outboundPort;
    const streams = Array.from({ length: 64 }, (_, i) => viaProxy(port, `http://b.mesh/stream/${i}`));
    const res = await viaProxy(port, 'http://b.mesh/quick');
    await Promise.all(streams);
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body).code).toBe('MESHAUTH_ERR_UPSTREAM_TIMEOUT');
    expect(paths.filter((path) => path.startsWith('/stream/'))).toHaveLength(64);
    expect(paths).not.toContain('/quick');
  }, 20_000);
});
