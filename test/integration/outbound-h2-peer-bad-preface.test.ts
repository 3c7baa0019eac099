// An HTTP/2 peer whose first frame is not SETTINGS (found by a hostile-peer probe): this sidecar's nghttp2 closes the
// session for the protocol error (GOAWAY PROTOCOL_ERROR). The outbound answered 503 PEER_UNAVAILABLE in the words of
// a lost connection ("the peer sidecar exited or restarted"), which points the operator at the wrong cause. Now the
// answer is 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL and the line names the protocol error. No stream is made before the
// peer acknowledged this sidecar's SETTINGS (stream-slots.ts), so the request was never sent: retried once, whatever
// its method, then answered. A peer that never acknowledges gets no request at all: 504 at the timeout, its session
// given up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { H2_FRAME, type RawH2Peer, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { PEER_HOST, startTestSidecar, type TestSidecar, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('outbound: an HTTP/2 peer that opens with a frame other than SETTINGS', () => {
  let peer: RawH2Peer;
  /** A peer that sends no frame at all, and so never acknowledges the sidecar's SETTINGS. */
  let silent: RawH2Peer;
  let a: TestSidecar;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    const increment = Buffer.alloc(4);
    increment.writeUInt32BE(1_000);
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, {
      noSettings: true,
      // Its first frame: a WINDOW_UPDATE, where RFC 9113 §3.4 wants SETTINGS.
      onConnection: (connection) => connection.frame(H2_FRAME.windowUpdate, 0, 0, increment),
      onStream: () => undefined,
    });
    silent = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, {
      noSettings: true,
      onStream: () => undefined,
    });
    a = await startTestSidecar(
      ca,
      ca.idFor('/ns/a/sa/a'),
      testConfig({
        appPort: 1,
        outboundTimeout: '600ms',
        routes: {
          [PEER_HOST]: { address: `127.0.0.1:${peer.port}`, ids: [peerId] },
          'silent.mesh': { address: `127.0.0.1:${silent.port}`, ids: [peerId] },
        },
      }),
      { logger: logs.logger },
    );
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
    await silent?.close();
  });

  async function retries(reason: string): Promise<number> {
    const { values } = await a.metrics.requestRetries.get();
    return values.find((v) => v.labels.direction === 'outbound' && v.labels.reason === reason)?.value ?? 0;
  }

  it.each(['GET', 'POST'])(
    'fail/%s: never sent, retried once, then 502 UPSTREAM_PROTOCOL naming the protocol error, not a lost peer',
    async (method) => {
      const retriesBefore = await retries('goaway');
      const connectionsBefore = peer.connections();
      const linesBefore = logs.lines.length;
      const res = await viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}/first-${method}`, {
        method,
        ...(method === 'POST' ? { body: 'x=1' } : {}),
      });
      expect(res.status).toBe(502); // before: 503 MESHAUTH_ERR_PEER_UNAVAILABLE
      expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
      expect(peer.streams).toHaveLength(0);
      expect(peer.connections() - connectionsBefore).toBe(2);
      expect((await retries('goaway')) - retriesBefore).toBe(1);
      const lines = logs.lines.slice(linesBefore).filter((l) => l.code !== undefined);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL', reason: 'protocol_error' });
      expect(lines[0]?.msg).toBe(
        'request rejected: this sidecar closed the HTTP/2 connection to the peer, which broke the protocol or ' +
          'flooded it (ERR_HTTP2_ERROR: Protocol error)',
      );
    },
  );

  it('fail/a peer that never acknowledges the SETTINGS → no request sent, 504 at the timeout, its session given up', async () => {
    const res = await viaProxy(a.sidecar.outboundPort, 'http://silent.mesh/x');
    expect(res.status).toBe(504);
    expect(silent.streams).toHaveLength(0);
    expect(
      logs.find({
        msg: "peer never acknowledged this sidecar's SETTINGS, so its session carries no stream; the next request connects again",
      }),
    ).toHaveLength(1);
  });
});
