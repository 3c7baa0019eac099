// An https OpenID provider under a private CA: with `oidc.caFile` naming that CA the gateway discovers it and signs
// users in; without it, discovery fails closed and a navigation gets 502 IDP_UNAVAILABLE (never a 500, never an
// unverified connection).
import { afterAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

describe('gateway with an https provider under a private CA', () => {
  const meshes: GatewayMesh[] = [];
  afterAll(async () => {
    for (const mesh of meshes) await mesh.close();
  });

  it('ok/oidc.caFile trusts the private CA: sign-in works', async () => {
    const mesh = await startGatewayMesh({
      providerTls: true,
      gateway: (base, files) => ({
        ...base,
        oidc: { ...(base.oidc as object), caFile: files.write('idp-ca.pem', files.caPem) },
        apiIssuers: [],
      }),
    });
    meshes.push(mesh);
    expect(mesh.provider.url.startsWith('https://')).toBe(true);
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    expect(page.status, page.body).toBe(200);
    expect(JSON.parse(page.body).next.user.sub).toBe('alice');
    await browser.close();
  });

  it('fail/without oidc.caFile the provider is not trusted: 502 IDP_UNAVAILABLE', async () => {
    const mesh = await startGatewayMesh({
      providerTls: true,
      gateway: (base) => ({ ...base, apiIssuers: [] }),
    });
    meshes.push(mesh);
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await browser.fetch(`${mesh.origin}/shop`);
    expect(page.status).toBe(502);
    expect(JSON.parse(page.body).code).toBe('MESHAUTH_ERR_IDP_UNAVAILABLE');
    expect(mesh.log.find({ msg: 'OpenID discovery failed' })).toHaveLength(1);
    await browser.close();
  });
});
