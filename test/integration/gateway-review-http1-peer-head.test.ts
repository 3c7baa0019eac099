// Outside review (2026-12-02), findings (bbfcc67..HEAD), gateway → a peer that speaks only HTTP/1.1: the in-process
// #forwardHttp1 writes the peer's head with no guard, so a head node:http2's compat response refuses (a repeated
// single-value header, a status outside 200-599) becomes an unhandled rejection instead of a 502; before the change the
// edge's handle().catch answered it.
import { connect as h2Connect, type IncomingHttpHeaders } from 'node:http2';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const PEER_ID = 'spiffe://example.org/ns/legacy/sa/h1';

describe('gateway (outside review): gateway → HTTP/1.1-only peer, heads an HTTP/2 browser cannot take', () => {
  let mesh: GatewayMesh;
  let peer: Server;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    const peerPort = await freePort();
    mesh = await startGatewayMesh({
      gateway: (base) => ({
        ...base,
        routes: [
          {
            name: 'legacy',
            match: { host: '127.0.0.1', pathPrefix: '/legacy' },
            to: { address: `127.0.0.1:${peerPort}`, ids: [PEER_ID] },
            login: 'none',
          },
          ...(base.routes as unknown[]),
        ],
      }),
    });
    const svid = await mesh.ca.issue({ id: PEER_ID });
    peer = createHttpsServer(
      {
        cert: svid.chainPem,
        key: svid.keyPem,
        ca: [mesh.ca.rootPem],
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['http/1.1'],
      },
      (req, res) => {
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
      },
    );
    await new Promise<void>((resolve) => peer.listen(peerPort, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    peer?.closeAllConnections();
    await new Promise<void>((resolve) => (peer ? peer.close(() => resolve()) : resolve()));
    await mesh?.close();
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
