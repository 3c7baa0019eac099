// A response the service cuts mid-body never reaches the client as complete: over HTTP/1.1 (chunked and
// content-length) the connection closes before the body ends, over HTTP/2 the stream is reset without END_STREAM.
// HTTP/1.0 is refused (426): its responses are close-delimited, so a cut would end like a complete body (found by an
// outside audit, 2026-12-02: curl --http1.0 exited 0 with the first 100 bytes of a cut response).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BadMesh, h1Exchange, startBadMesh } from '../helpers/gateway-bad-service.js';
import { rawH2Client } from '../helpers/raw-h2-client.js';
import { eventually } from '../helpers/wait.js';

const RST_STREAM = 0x3;
const DATA = 0x0;
const END_STREAM = 0x1;

describe('gateway: responses cut by the service', () => {
  let m: BadMesh;
  beforeAll(async () => {
    m = await startBadMesh();
  });
  afterAll(async () => {
    await m?.close();
  });

  it.each([['/bad/cl-cut'], ['/bad/chunk-cut'], ['/bad/stall-body']])(
    'ok/HTTP/1.1 %s: the connection closes before the body is complete',
    async (path) => {
      const r = await h1Exchange(m.port, m.mesh.files.caPem, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 5_000);
      expect(r.text.startsWith('HTTP/1.1 200')).toBe(true);
      expect(r.closed).toBe(true);
      expect(r.text.endsWith('0\r\n\r\n')).toBe(false);
    },
  );

  it.each([['/bad/cl-cut'], ['/bad/chunk-cut'], ['/bad/stall-body']])(
    'ok/HTTP/2 %s: RST_STREAM, never END_STREAM',
    async (path) => {
      const c = await rawH2Client(m.port, m.mesh.files.caPem);
      try {
        c.headers(
          1,
          [
            [':method', 'GET'],
            [':scheme', 'https'],
            [':authority', `127.0.0.1:${m.port}`],
            [':path', path],
          ],
          true,
        );
        await eventually(() => c.received.some((f) => f.stream === 1 && f.type === RST_STREAM));
        const mine = c.received.filter((f) => f.stream === 1);
        expect(mine.some((f) => f.type === RST_STREAM)).toBe(true);
        expect(mine.some((f) => (f.type === DATA || f.type === 0x1) && (f.flags & END_STREAM) !== 0)).toBe(false);
      } finally {
        c.close();
      }
    },
  );

  it('fail/an HTTP/1.0 request → 426 MESHAUTH_ERR_HTTP_VERSION, never forwarded', async () => {
    const before = m.badApp.seen.length;
    const r = await h1Exchange(
      m.port,
      m.mesh.files.caPem,
      'GET /bad/chunk-cut HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n',
      3_000,
    );
    expect(r.text.split('\r\n')[0]).toBe('HTTP/1.1 426 Upgrade Required');
    expect(r.text.toLowerCase()).toContain('upgrade: http/1.1');
    expect(r.text).toContain('"code":"MESHAUTH_ERR_HTTP_VERSION"');
    expect(m.badApp.seen.length).toBe(before);
    expect(m.mesh.log.find({ event: 'gateway_deny', reason: 'http_1_0' }).length).toBeGreaterThanOrEqual(1);
  });
});
