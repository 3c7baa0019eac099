// The gateway's /readyz names what is missing, as the sidecar's does: a bare "not ready" left an operator guessing
// whether the SVID had expired or the gateway was shutting down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

async function readyz(mesh: GatewayMesh, path = '/readyz'): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${mesh.gateway.adminPort}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('gateway /readyz', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
  }, 60_000);
  afterAll(async () => {
    await mesh?.close();
  });

  it('ok/ready while the gateway holds a valid SVID', async () => {
    expect(await readyz(mesh)).toEqual({ status: 200, body: 'ready\n' });
    expect(await readyz(mesh, '/startupz')).toEqual({ status: 200, body: 'started\n' });
  });

  it('fail/an expired SVID is named with its expiry', async () => {
    const notAfter = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    const expired = await mesh.ca.issue({
      id: mesh.gatewayId,
      notBefore: new Date(notAfter.getTime() - 3_600_000),
      notAfter,
    });
    mesh.gateway.holder.set({ svid: expired.svid, bundle: mesh.ca.bundle });
    const answer = await readyz(mesh);
    expect(answer.status).toBe(503);
    expect(answer.body).toBe(`not ready: SVID expired at ${notAfter.toISOString()}\n`);
    // The startup probe names it too, where it answered a bare "no valid SVID yet".
    expect(await readyz(mesh, '/startupz')).toEqual({
      status: 503,
      body: `not started: SVID expired at ${notAfter.toISOString()}\n`,
    });
  });
});
