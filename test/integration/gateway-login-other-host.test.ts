// A `login: required` route on `*` answers browsers on every host, but a sign-in can only finish on the redirect
// URI's host (its pre-login and session cookies are host-only). A navigation on another host (localhost) is sent to the same path
// on the redirect URI's origin, where the sign-in then starts and finishes; no pre-login cookie is set for the host
// it cannot come back to.
// Found in review: the gateway started the sign-in on the other host, the provider returned the browser to the
// redirect URI's host without that pre-login cookie, and every such sign-in ended in 401 `no_login_state`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

describe('gateway: a `*` route with login on a host other than the redirect URI’s', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      gateway: (base) => {
        const [web] = base.routes as Array<Record<string, unknown>>;
        return { ...base, routes: [{ ...web, match: { host: '*', pathPrefix: '/' } }] };
      },
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  async function redirects(): Promise<number> {
    const values = (await mesh.metrics.gatewayDecisions.get()).values;
    return values.find((v) => v.labels.route === 'web' && v.labels.rule === 'redirect')?.value ?? 0;
  }

  it('ok/a navigation on another host (localhost) is sent to the same path on the sign-in origin, without a pre-login cookie', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const before = await redirects();
      const page = await browser.fetch(`${mesh.origin}/shop/orders?x=1`, { headers: { host: 'localhost' } });
      expect(page.status).toBe(302);
      expect(page.headers.location).toBe(`${mesh.origin}/shop/orders?x=1`);
      expect(page.headers['set-cookie']).toBeUndefined();
      expect(await redirects()).toBe(before + 1);
      expect(mesh.log.find({ event: 'login_elsewhere', route: 'web', host: 'localhost' })).toHaveLength(1);
      // There the sign-in starts and finishes.
      const landed = await browser.signIn(String(page.headers.location), ALICE.username, ALICE.password);
      expect(landed.status, landed.body).toBe(200);
      expect(JSON.parse(landed.body)).toMatchObject({ path: '/shop/orders?x=1', user: { sub: 'alice' } });
    } finally {
      await browser.close();
    }
  });

  it('ok/an API call on another host (localhost) still gets 401, never a redirect', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const page = await browser.fetch(`${mesh.origin}/shop/orders`, {
        navigate: false,
        headers: { host: 'localhost', accept: 'application/json' },
      });
      expect(page.status).toBe(401);
      expect(JSON.parse(page.body).code).toBe('MESHAUTH_ERR_LOGIN_REQUIRED');
    } finally {
      await browser.close();
    }
  });

  it('ok/on the redirect URI’s own host the navigation goes to the provider as before', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const page = await browser.fetch(`${mesh.origin}/shop`);
      expect(page.status).toBe(302);
      expect(String(page.headers.location)).toContain(`${mesh.provider.url}/auth?`);
    } finally {
      await browser.close();
    }
  });
});
