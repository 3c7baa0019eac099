// A peer's response head is bounded by what it decodes to, not by what it costs on the wire (found by a probe of
// hostile peers): HPACK stores one 4 KiB field once and names it again with one byte, so 6 KB of frames decoded to
// an 8 MB head, which the outbound took whole (node:http2's own bound is 16 MiB), wrote to the app and counted as a
// 200; 40 of them in flight exhausted a 192 MB heap. The outbound now announces SETTINGS_MAX_HEADER_LIST_SIZE of
// 64 KiB, which node:http2 enforces: such a stream is reset before its head reaches JavaScript, the app gets an error
// answer, and a head under the bound still passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hpackLiteral, type RawH2Peer, type RawStream, startRawH2Peer } from '../helpers/raw-h2-peer.js';
import { PEER_HOST, startRoutedSidecar, type TestSidecar } from '../helpers/sidecar-harness.js';
import { rawHttpExchange } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';

/** `:status 200`, then `x-a: <size bytes>` into the dynamic table, then that entry named `times` more times. */
function amplifiedHead(size: number, times: number): Buffer {
  const status200 = Buffer.from([0x88]); // static table entry 8
  const entry = hpackLiteral('x-a', 'v'.repeat(size), { index: true });
  return Buffer.concat([status200, entry, Buffer.alloc(times, 0xbe)]);
}

describe('outbound: an HPACK-amplified response head', () => {
  let peer: RawH2Peer;
  let a: TestSidecar;
  let script: (stream: RawStream) => void = () => undefined;

  beforeAll(async () => {
    const ca = await TestCa.create();
    const peerId = ca.idFor('/ns/b/sa/b');
    peer = await startRawH2Peer(await ca.issue({ id: peerId }), ca.bundlePem, { onStream: (s) => script(s) });
    a = await startRoutedSidecar(ca, peer.port, peerId, { outboundTimeout: '2s' });
  });
  afterAll(async () => {
    await a?.sidecar.close(0);
    await peer?.close();
  });

  /** The app's request as raw bytes (an HTTP client would refuse a head over its own 16 KiB): the whole reply. */
  function call(path: string): Promise<string> {
    return rawHttpExchange(
      a.sidecar.outboundPort,
      `GET http://${PEER_HOST}${path} HTTP/1.1\r\nHost: ${PEER_HOST}\r\nConnection: close\r\n\r\n`,
    );
  }

  async function okCount(): Promise<number> {
    const text = await a.metrics.registry.getSingleMetricAsString('meshauth_requests_total');
    return [...text.matchAll(/direction="outbound"[^}]*code="200"[^}]*\} (\d+)/g)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  }

  it('fail/6 KB of frames decoding to an 8 MB head → an error answer, nothing of it passed on, no 200 counted', async () => {
    script = (stream) => {
      stream.respondBlock(amplifiedHead(4_061, 2_000));
      stream.data('body', true);
    };
    const before = await okCount();
    // The first request rides a session whose SETTINGS the peer may not have acknowledged yet; the later ones do not.
    for (const path of ['/amp1', '/amp2', '/amp3']) {
      const reply = await call(path);
      expect(reply).toMatch(/^HTTP\/1\.1 50[23] /);
      expect(reply).not.toContain('vvvv');
    }
    expect(await okCount()).toBe(before);
  });

  it('ok/a head of 40 KiB decoded (10 fields named again) → passed on', async () => {
    script = (stream) => {
      stream.respondBlock(amplifiedHead(4_061, 9));
      stream.data('body', true);
    };
    const reply = await call('/small');
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply.length).toBeGreaterThan(40_000);
    expect(reply.slice(reply.indexOf('\r\n\r\n'))).toContain('body');
  });
});
