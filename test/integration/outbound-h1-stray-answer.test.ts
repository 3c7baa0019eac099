// A peer reached over HTTP/1.1 (`outbound.http2: false`) that sends an answer no request asked for: its kept
// connections could hand that answer to the next request. The outbound's client stops reusing connections to it for
// a while (http1-client-stray-answers.test.ts), and the outbound counts and logs it:
// meshauth_streams_reset_total{direction="outbound",reason="peer_stray_answer"} and one warn line naming the endpoint.
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { peerServerTls, startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

describe('outbound over HTTP/1.1: a peer that answers twice', () => {
  let caller: TestSidecar;
  let peer: Server;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    peer = createTlsServer({ ...peerServerTls(await ca.issue({ id: peerId }), ca), ALPNProtocols: ['http/1.1'] });
    peer.on('secureConnection', (socket: TLSSocket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        // The same answer again, once the first has been taken and the connection sits idle.
        setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray'), 30).unref();
      });
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const config = testConfig({
      appPort: 1,
      routes: { 'b.mesh': { address: `127.0.0.1:${(peer.address() as AddressInfo).port}`, ids: [peerId] } },
    });
    caller = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      { ...config, outbound: { ...config.outbound, http2: false } },
      {
        logger: logs.logger,
      },
    );
  });
  afterAll(async () => {
    await caller?.sidecar.close(0);
    await new Promise((resolve) => peer?.close(resolve));
  });

  it("fail/a second answer on an idle connection → counted and logged as the peer's stray answer", async () => {
    const res = await viaProxy(caller.sidecar.outboundPort, 'http://b.mesh/once');
    expect(res.body).toBe('ok');
    await waitFor('the stray counted', async () =>
      (await caller.metrics.registry.getSingleMetricAsString('meshauth_streams_reset_total')).includes(
        'direction="outbound",reason="peer_stray_answer"} 1',
      ),
    );
    const [line] = logs.find({ reason: 'peer_stray_answer' });
    expect(line?.msg).toMatch(/^the peer sent an HTTP\/1\.1 answer no request asked for/);
  });
});
