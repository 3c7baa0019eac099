// The gateway renews or re-stamps the session on a service's answer (the Set-Cookie rides on it). When that answer
// says a shared cache may keep it (`Cache-Control: public, max-age=…`, a static asset), a CDN or proxy cache in
// front of the gateway would store the user's session cookie with it and hand it to every later visitor: an answer
// carrying the gateway's session cookie is `no-store`. Answers without it keep the service's caching.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, API_CLIENT, CACHEABLE_ANSWER, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

describe('gateway: caching of answers that carry the session cookie', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    // refreshBefore longer than the access token's life: every request renews, so every answer carries the cookie.
    mesh = await startGatewayMesh({
      gateway: (base) => ({ ...base, oidc: { ...(base.oidc as object), refreshBefore: '10m' } }),
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/a cacheable service answer that carries the renewed session is made no-store', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const page = await browser.fetch(`${mesh.origin}/shop/cacheable/app.js`);
    expect(page.status).toBe(200);
    const setCookie = [page.headers['set-cookie'] ?? []].flat();
    expect(setCookie.some((line) => line.startsWith('__Host-meshauth='))).toBe(true);
    expect(setCookie.some((line) => line.startsWith('app-pref='))).toBe(true);
    expect(page.headers['cache-control']).toBe('no-store');
    await browser.close();
  });

  it('fail/no CDN or proxy cache field of the service survives next to the renewed session', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const page = await browser.fetch(`${mesh.origin}/shop/cacheable/app.js`);
    expect(page.status).toBe(200);
    expect([page.headers['set-cookie'] ?? []].flat().some((line) => line.startsWith('__Host-meshauth='))).toBe(true);
    const caching = Object.keys(CACHEABLE_ANSWER).filter((name) => name !== 'cache-control');
    expect(caching.filter((name) => page.headers[name] !== undefined)).toEqual([]);
    expect(page.headers['cache-control']).toBe('no-store');
    await browser.close();
  });

  it('ok/an answer without the session cookie keeps the service caching (API token)', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const token = await mesh.provider.provider.getToken(API_CLIENT.clientId, 'orders:read');
    const page = await browser.fetch(`${mesh.origin}/shop/cacheable/app.js`, {
      navigate: false,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    });
    expect(page.status).toBe(200);
    expect([page.headers['set-cookie'] ?? []].flat().some((line) => line.startsWith('__Host-meshauth'))).toBe(false);
    for (const [name, value] of Object.entries(CACHEABLE_ANSWER)) expect(page.headers[name]).toBe(value);
    await browser.close();
  });
});
