// The gateway's browser sign-in end to end with a scripted browser: protected page → provider → password →
// callback → the page two hops down sees the user and the chain [gateway, web]; the session cookie never passes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

let mesh: GatewayMesh;
beforeAll(async () => {
  mesh = await startGatewayMesh();
});
afterAll(async () => {
  await mesh?.close();
});

describe('gateway sign-in', () => {
  it('ok/a browser signs in and reaches the app two hops down with a passport chain [gateway, web]', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const first = await browser.fetch(`${mesh.origin}/shop/orders?x=1`);
      expect(first.status).toBe(302);
      expect(String(first.headers.location)).toContain(`${mesh.provider.url}/auth?`);
      const landed = await browser.signIn(`${mesh.origin}/shop/orders?x=1`, ALICE.username, ALICE.password);
      expect(landed.status, landed.body).toBe(200);
      const web = JSON.parse(landed.body);
      expect(web.path).toBe('/shop/orders?x=1');
      expect(web.user.sub).toBe('alice');
      expect(web.chain).toEqual([mesh.gatewayId]);
      expect(web.caller).toBe(mesh.gatewayId);
      expect(web.cookie).toBeUndefined();
      expect(web.authorization).toBeUndefined();
      expect(web.next.user.sub).toBe('alice');
      expect(web.next.user.email).toBe('alice@example.org');
      expect(web.next.chain).toEqual([mesh.gatewayId, mesh.webId]);
      const session = browser.cookie('__Host-meshauth');
      expect(session?.attributes).toMatch(/HttpOnly/);
      expect(session?.attributes).toMatch(/Secure/);
      expect(session?.attributes).toMatch(/SameSite=Lax/);
      expect(session?.attributes).toMatch(/Path=\//);
      // The completed sign-in cleared its pre-login cookie; the first, abandoned attempt's expires on its own.
      expect(browser.cookiesStartingWith('__Host-meshauth-login')).toHaveLength(1);
      expect((await mesh.metrics.gatewayLogins.get()).values).toContainEqual(
        expect.objectContaining({ labels: { result: 'ok' }, value: 1 }),
      );
      expect(mesh.log.find({ event: 'login', result: 'ok' })).toHaveLength(1);
    } finally {
      await browser.close();
    }
  });
});
