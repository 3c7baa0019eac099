// The gateway's path to an HTTP/1.1-only peer drops identity headers from the peer's response, as the HTTP/2 path
// does (found by an outside audit): a peer that is not a meshauth sidecar (a legacy mTLS service) could otherwise
// hand a browser `x-meshauth-*` or `x-forwarded-client-cert` values the gateway seems to vouch for.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';

describe('gateway → HTTP/1.1 peer, response headers', () => {
  let mesh: GatewayMesh;
  let started: GatewayWithHttp1Peer | undefined;
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      req.resume();
      res.setHeader('x-meshauth-user', '{"sub":"admin"}');
      res.setHeader('x-forwarded-client-cert', 'By=spiffe://example.org/ns/x/sa/y');
      res.setHeader('x-kept', 'yes');
      res.end('ok');
    });
    ({ mesh } = started);
  });
  afterAll(async () => {
    await started?.close();
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
