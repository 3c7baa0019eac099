// The provider's token endpoint in trouble while a browser signs in: a 503 page, a JSON `server_error`, no answer
// at all. Each is the provider being unavailable (502 MESHAUTH_ERR_IDP_UNAVAILABLE, counted as `idp_unavailable`),
// never an ID token the gateway refused (401, `id_token_invalid`: what an operator reads as an attack).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { type FakeOp, startScriptedOpMesh, type TokenEndpointFault } from '../helpers/fake-op.js';
import { type GatewayMesh, gatewayLogins } from '../helpers/gateway-mesh.js';

describe('gateway: token endpoint outage during sign-in', () => {
  let op: FakeOp;
  let mesh: GatewayMesh;
  beforeAll(async () => {
    ({ op, mesh } = await startScriptedOpMesh());
  });
  afterAll(async () => {
    await mesh?.close();
    await op?.close();
  });

  for (const fault of ['html_503', 'server_error', 'no_answer'] as const satisfies readonly TokenEndpointFault[]) {
    it(`fail/token endpoint ${fault} → 502 MESHAUTH_ERR_IDP_UNAVAILABLE, counted idp_unavailable, one log line`, async () => {
      op.tokenFault = fault;
      const browser = new ScriptedBrowser(mesh.ca.rootPem);
      try {
        const before = await gatewayLogins(mesh, 'idp_unavailable');
        const seen = mesh.log.lines.length;
        const page = await browser.navigate(`${mesh.origin}/shop`);
        expect(page.status).toBe(502);
        expect(page.body).toContain('MESHAUTH_ERR_IDP_UNAVAILABLE');
        expect(await gatewayLogins(mesh, 'idp_unavailable')).toBe(before + 1);
        const lines = mesh.log.lines.slice(seen).filter((line) => line.event === 'login');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({ result: 'failed', reason: 'idp_unavailable' });
      } finally {
        op.tokenFault = 'none';
        await browser.close();
      }
    }, 30_000);
  }

  it('ok/the provider back: the next sign-in completes', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await browser.navigate(`${mesh.origin}/shop`);
    expect(page.status, page.body).toBe(200);
    await browser.close();
  });
});
