// What the outbound does with an HTTP/2 peer's response head that is unusual but well-formed HTTP/2 (found by a
// hostile-peer probe). A :status of 600–999 is three digits, all nghttp2 checks, and reached the app as it was (counted
// as 6xx/9xx), while the same status from an HTTP/1.1 peer is refused: now 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL
// (reason response_head) on both. A head larger than the HTTP/1.1 path's 16 KiB is still forwarded: the documented
// limit (docs/outbound.md), since peers of other makes may send such heads and apps whose clients read them do today.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { PEER_HOST, startRoutedSidecar, type TestSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('outbound: an HTTP/2 peer’s response head', () => {
  let peer: RawH2Peer;
  let a: TestSidecar;
  let script: (stream: RawStream) => void = () => undefined;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, { onStream: (s) => script(s) });
    a = await startRoutedSidecar(ca, peer.port, peerId, {}, { logger: logs.logger });
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });

  async function requests(code: string): Promise<number> {
    const { values } = await a.metrics.requests.get();
    return values
      .filter((v) => v.labels.direction === 'outbound' && v.labels.code === code)
      .reduce((sum, v) => sum + v.value, 0);
  }

  it.each([600, 999])(
    'fail/:status %i → 502 UPSTREAM_PROTOCOL (response_head), as from an HTTP/1.1 peer',
    async (status) => {
      script = (stream) => {
        stream.respond(status, { 'content-length': '2' });
        stream.data('ok', true);
      };
      const before = {
        bad: await requests('502'),
        odd: await requests(`${String(status)[0]}xx`),
        lines: logs.lines.length,
      };
      const res = await viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}/status-${status}`);
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_UPSTREAM_PROTOCOL' });
      expect(await requests('502')).toBe(before.bad + 1);
      expect(await requests(`${String(status)[0]}xx`)).toBe(before.odd);
      const line = logs.lines.slice(before.lines).find((l) => l.code === 'MESHAUTH_ERR_UPSTREAM_PROTOCOL');
      expect(line).toMatchObject({ reason: 'response_head', status: 502, peerStatus: status });
    },
  );

  it('ok/:status 599 → passed to the app as it is', async () => {
    script = (stream) => {
      stream.respond(599, { 'content-length': '2' });
      stream.data('ok', true);
    };
    const res = await viaProxy(a.sidecar.outboundPort, `http://${PEER_HOST}/status-599`);
    expect(res).toMatchObject({ status: 599, body: 'ok' });
  });

  it('ok/a 20,000-byte head (over the HTTP/1.1 path’s 16 KiB) is forwarded whole: a documented limit, not a refusal', async () => {
    const value = 'v'.repeat(20_000);
    script = (stream) => {
      stream.respond(200, { 'x-large': value, 'content-length': '2' });
      stream.data('ok', true);
    };
    // An app client that reads heads up to 64 KiB (Node's default is 16 KiB; Go's, curl's and Java's are larger).
    const seen = await new Promise<{ status: number | undefined; large: string | undefined }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: a.sidecar.outboundPort,
          path: `http://${PEER_HOST}/large-head`,
          headers: { host: PEER_HOST },
          agent: false,
          maxHeaderSize: 64 * 1024,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode, large: res.headers['x-large'] as string }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(seen.status).toBe(200);
    expect(seen.large).toBe(value);
  });
});
