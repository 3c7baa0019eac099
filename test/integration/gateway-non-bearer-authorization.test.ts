// At the gateway only a Bearer credential is an API credential: an `Authorization` header of another scheme (Basic,
// which a browser sends on its own once a service behind the gateway answered `WWW-Authenticate: Basic`) leaves the
// browser session in charge, and is still dropped before the mesh.
// Found in review: any Authorization header took the API-credential branch. Without apiIssuers a signed-in browser
// sending Basic got 401 `error="invalid_token"` ("no apiIssuers configured") although it sent no token; with
// apiIssuers it became anonymous, so a `login: required` navigation was sent to the provider again and again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const BASIC = { authorization: `Basic ${Buffer.from('alice:app-password').toString('base64')}` };

describe.each([
  ['with apiIssuers', false],
  ['without apiIssuers', true],
])('gateway %s: a non-Bearer Authorization header', (_name, withoutApiIssuers) => {
  let mesh: GatewayMesh;
  let browser: ScriptedBrowser;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      gateway: (base) => {
        if (!withoutApiIssuers) return base;
        const { apiIssuers: _dropped, ...rest } = base;
        return rest;
      },
    });
    browser = new ScriptedBrowser(mesh.ca.rootPem);
    const landed = await browser.signIn(`${mesh.origin}/`, ALICE.username, ALICE.password);
    expect(landed.status, landed.body).toBe(200);
  });
  afterAll(async () => {
    await browser?.close();
    await mesh?.close();
  });

  it('ok/a signed-in browser sending Basic reaches the page as its user; the header does not pass', async () => {
    const page = await browser.fetch(`${mesh.origin}/account`, { headers: BASIC });
    expect(page.status, page.body).toBe(200);
    const web = JSON.parse(page.body);
    expect(web.user.sub).toBe('alice');
    expect(web.authorization).toBeUndefined();
  });

  it('ok/a signed-in browser sending Basic on a state-changing request is still held to the same-origin check', async () => {
    const page = await browser.fetch(`${mesh.origin}/account`, {
      method: 'POST',
      headers: { ...BASIC, 'sec-fetch-site': 'cross-site' },
      body: 'x=1',
    });
    expect(page.status).toBe(403);
    expect(JSON.parse(page.body).code).toBe('MESHAUTH_ERR_CROSS_SITE_REQUEST');
  });

  it('ok/a navigation with Basic and no session is sent to sign in, not refused as a bad token', async () => {
    const stranger = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const page = await stranger.fetch(`${mesh.origin}/account`, { headers: BASIC });
      expect(page.status, page.body).toBe(302);
      expect(String(page.headers.location)).toContain(`${mesh.provider.url}/auth?`);
    } finally {
      await stranger.close();
    }
  });

  it('fail/a Bearer token that does not verify is refused even next to a valid session', async () => {
    const page = await browser.fetch(`${mesh.origin}/account`, { headers: { authorization: 'Bearer not-a-jwt' } });
    expect(page.status).toBe(401);
    expect(String(page.headers['www-authenticate'])).toContain('error="invalid_token"');
  });

  it('fail/a JWT sent under the Basic scheme is refused as a malformed credential, not read as no token', async () => {
    const jwtLike = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2ln';
    const page = await browser.fetch(`${mesh.origin}/account`, { headers: { authorization: `Basic ${jwtLike}` } });
    expect(page.status).toBe(400);
    expect(JSON.parse(page.body).code).toBe('MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED');
  });
});
