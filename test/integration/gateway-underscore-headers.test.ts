// Request header names with `_` stop at the gateway, as at the sidecar's inbound and external listener
// (docs/security-limits.md): CGI, WSGI, PHP and Rack hand `x_meshauth_user` to the app as HTTP_X_MESHAUTH_USER, the
// same as `x-meshauth-user`, so an underscore spelling passes beside the identity-header strip and the gateway's own
// X-Forwarded-For. Found by an outside test: the gateway forwarded them, which reached the service whenever the
// route's peer is an mTLS server without a meshauth sidecar (whose inbound would drop them).
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';

describe('gateway: header names with an underscore', () => {
  let started: GatewayWithHttp1Peer | undefined;
  let agent: Agent;
  const seen: IncomingHttpHeaders[] = [];
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    });
    agent = new Agent({ connect: { ca: started.mesh.ca.rootPem } });
  });
  afterAll(async () => {
    await agent?.close();
    await started?.close();
  });

  it('fail/x_meshauth_user, x_forwarded_for and x_role never reach the service; ok/x-probe does', async () => {
    const mesh = started?.mesh as GatewayWithHttp1Peer['mesh'];
    const answer = await request(`${mesh.origin}/legacy/whoami`, {
      dispatcher: agent,
      headers: {
        x_meshauth_user: '{"sub":"admin","iss":"https://login.example.com"}',
        x_forwarded_for: '10.0.0.1',
        x_role: 'admin',
        'x-probe': 'kept',
      },
    });
    await answer.body.dump();
    expect(answer.statusCode).toBe(200);
    const headers = seen.at(-1) ?? {};
    expect(headers['x-probe']).toBe('kept');
    expect(Object.keys(headers).filter((name) => name.includes('_'))).toEqual([]);
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});
