// An HTTP/2 peer whose first frame is not SETTINGS (found by a hostile-peer probe): this sidecar's nghttp2 closes the
// session for the protocol error (GOAWAY PROTOCOL_ERROR), and node:http2 fails its streams with that session's error.
// The outbound answered 503 PEER_UNAVAILABLE in the words of a lost connection ("the peer sidecar exited or
// restarted"), which points the operator at the wrong cause. Now the answer is 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL and
// the line names the protocol error; a bodiless GET is still retried once, as for any connection lost before its head.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { H2_FRAME, type RawH2Peer, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { PEER_HOST, startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('outbound: an HTTP/2 peer that opens with a frame other than SETTINGS', () => {
  let peer: RawH2Peer;
  let a: TestSidecar;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(1_000);
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, {
      noSettings: true,
      // Its first frame, sent once the request is there: a WINDOW_UPDATE, where RFC 9113 §3.4 wants SETTINGS.
      onStream: (stream) => stream.connection.frame(H2_FRAME.windowUpdate, 0, 0, increment),
    });
    a = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({ appPort: 1, routes: { [PEER_HOST]: { address: `127.0.0.1:${peer.port}`, ids: [peerId] } } }),
      { logger: logs.logger },
    );
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });

  async function retries(reason: string): Promise<number> {
    const { values } = await a.metrics.requestRetries.get();
    return values.find((v) => v.labels.direction === 'outbound' && v.labels.reason === reason)?.value ?? 0;
  }

  it.each([
    ['GET', 'retried once, then', 2, 1],
    ['POST', 'not retried:', 1, 0],
  ] as const)(
    'fail/%s: %s 502 UPSTREAM_PROTOCOL naming the protocol error, not a lost peer',
    async (method, _how, sent, retried) => {
      const streamsBefore = peer.streams.length;
      const retriesBefore = await retries('connection_lost');
      const linesBefore = logs.lines.length;
      const res = await viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}/first-${method}`, {
        method,
        ...(method === 'POST' ? { body: 'x=1' } : {}),
      });
      expect(res.status).toBe(502); // before: 503 MESHAUTH_ERR_PEER_UNAVAILABLE
      expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
      expect(peer.streams.length - streamsBefore).toBe(sent);
      expect((await retries('connection_lost')) - retriesBefore).toBe(retried);
      const lines = logs.lines.slice(linesBefore).filter((l) => l.code !== undefined);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL', reason: 'protocol_error' });
      expect(lines[0]?.msg).toBe(
        'request rejected: this sidecar closed the HTTP/2 connection to the peer, which broke the protocol or ' +
          'flooded it (ERR_HTTP2_ERROR: Protocol error)',
      );
    },
  );
});
