// Headers a browser's `Connection` header names are hop-by-hop (RFC 9110 §7.6.1): the gateway drops them before the
// mesh, as the sidecars do (found by an outside audit: the edge dropped only the fixed hop-by-hop names).
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

describe('gateway: Connection-listed request headers', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      gateway: (base) => {
        const [web] = base.routes as Array<Record<string, unknown>>;
        return {
          ...base,
          routes: [{ name: 'public', match: { host: '127.0.0.1', pathPrefix: '/public' }, to: web?.to, login: 'none' }],
        };
      },
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  function get(headers: Record<string, string>): Promise<{ status: number; probe: unknown }> {
    const url = new URL(`${mesh.origin}/public/page`);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        { host: url.hostname, port: url.port, path: url.pathname, ca: mesh.ca.rootPem, agent: false, headers },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, probe: JSON.parse(body).probe }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('ok/a header the Connection header does not name reaches the service', async () => {
    expect(await get({ 'x-probe': 'kept' })).toEqual({ status: 200, probe: 'kept' });
  });

  it('fail/a header the Connection header names stops at the gateway', async () => {
    expect(await get({ connection: 'keep-alive, X-Probe', 'x-probe': 'hop-only' })).toEqual({
      status: 200,
      probe: undefined,
    });
  });
});
