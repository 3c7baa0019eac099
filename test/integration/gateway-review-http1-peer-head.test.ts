// Outside review (2026-12-02), findings (bbfcc67..HEAD), gateway → a peer that speaks only HTTP/1.1: the in-process
// #forwardHttp1 writes the peer's head with no guard, so a head node:http2's compat response refuses (a repeated
// single-value header, a status outside 200-599) becomes an unhandled rejection instead of a 502; before the change the
// edge's handle().catch answered it.
import { connect as h2Connect, type IncomingHttpHeaders } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';

describe('gateway (outside review): gateway → HTTP/1.1-only peer, heads an HTTP/2 browser cannot take', () => {
  let mesh: GatewayMesh;
  let started: GatewayWithHttp1Peer | undefined;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    started = await startGatewayWithHttp1Peer((req, res) => {
      if (req.url === '/legacy/two-etags') {
        res.writeHead(200, [
          ['content-type', 'text/plain'],
          ['etag', '"a"'],
          ['etag', '"b"'],
        ]);
        res.end('hello');
        return;
      }
      res.writeHead(600, { 'content-type': 'text/plain' });
      res.end('odd status');
    });
    ({ mesh } = started);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await started?.close();
  });

  function h2Get(path: string): Promise<number> {
    const session = h2Connect(mesh.origin, { ca: mesh.files.caPem });
    session.on('error', () => undefined);
    return new Promise<number>((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': path }, { endStream: true });
      let status = 0;
      const timer = setTimeout(() => stream.close(), 4_000);
      stream.on('response', (h: IncomingHttpHeaders) => {
        status = Number(h[':status']);
      });
      stream.on('error', () => undefined);
      stream.on('close', () => {
        clearTimeout(timer);
        session.close();
        resolve(status);
      });
      stream.resume();
    });
  }

  it.each([['/legacy/two-etags'], ['/legacy/status-600']])(
    'fail/%s over HTTP/2 → 502 MESHAUTH_ERR_UPSTREAM_PROTOCOL, no unhandled rejection',
    async (path) => {
      const before = rejections.length;
      const status = await h2Get(path);
      expect(rejections.slice(before).map((r) => (r as Error & { code?: string }).code)).toEqual([]);
      expect(status).toBe(502);
    },
  );
});
