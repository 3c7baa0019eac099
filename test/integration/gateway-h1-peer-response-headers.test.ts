// The gateway's path to an HTTP/1.1-only peer drops identity headers from the peer's response, as the HTTP/2 path
// does (found by an outside audit): a peer that is not a meshauth sidecar (a legacy mTLS service) could otherwise
// hand a browser `x-meshauth-*` or `x-forwarded-client-cert` values the gateway seems to vouch for.
import { createServer as createHttpsServer, type Server } from 'node:https';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const PEER_ID = 'spiffe://example.org/ns/legacy/sa/h1';

describe('gateway → HTTP/1.1 peer, response headers', () => {
  let mesh: GatewayMesh;
  let peer: Server;
  beforeAll(async () => {
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
        req.resume();
        res.setHeader('x-meshauth-user', '{"sub":"admin"}');
        res.setHeader('x-forwarded-client-cert', 'By=spiffe://example.org/ns/x/sa/y');
        res.setHeader('x-kept', 'yes');
        res.end('ok');
      },
    );
    await new Promise<void>((resolve) => peer.listen(peerPort, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    peer?.closeAllConnections();
    await new Promise<void>((resolve) => (peer ? peer.close(() => resolve()) : resolve()));
    await mesh?.close();
  });

  it('fail/identity headers of the peer never reach the browser; other headers do', async () => {
    const agent = new Agent({ connect: { ca: mesh.files.caPem } });
    try {
      const answer = await request(`${mesh.origin}/legacy/page`, { dispatcher: agent });
      expect(answer.statusCode).toBe(200);
      expect(await answer.body.text()).toBe('ok');
      expect(answer.headers['x-kept']).toBe('yes');
      expect(answer.headers['x-meshauth-user']).toBeUndefined();
      expect(answer.headers['x-forwarded-client-cert']).toBeUndefined();
    } finally {
      await agent.close();
    }
  });
});
