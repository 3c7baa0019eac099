// Signing out, from an outside audit:
// 1. Logout used to clear only the browser's cookies while the sealed session stayed valid: a copy taken before
//    (a shared machine, a proxy log) kept working until the absolute timeout. The gateway now remembers signed-out
//    sessions until then (per process: docs/gateway.md).
// 2. A GET logout another site started (Sec-Fetch-Site cross-site) used to sign the user out, at the provider too
//    (RP-initiated logout with id_token_hint); it is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const SESSION = '__Host-meshauth';

describe('gateway: signing out', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/a session cookie copied before logout no longer works after logout', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const stolen = browser.cookie(SESSION)?.value as string;
    expect(stolen).toBeDefined();
    const out = await browser.fetch(`${mesh.origin}/.meshauth/logout`);
    expect(out.status).toBe(302);
    expect(browser.cookie(SESSION)).toBeUndefined(); // the browser forgot it
    const thief = new ScriptedBrowser(mesh.ca.rootPem);
    thief.setCookie('127.0.0.1', SESSION, stolen);
    const replay = await thief.fetch(`${mesh.origin}/shop/account`);
    expect(replay.status).not.toBe(200);
    // Signing in again at once is a new session, not the signed-out one (same user, same second).
    // (The browser did not follow the provider's logout, so the provider may sign it in without a form.)
    let again = await browser.navigate(`${mesh.origin}/shop`);
    if (again.body.includes('<form')) again = await browser.submitLogin(again, ALICE.username, ALICE.password);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body).user.sub).toBe(ALICE.username);
    expect((await browser.fetch(`${mesh.origin}/shop/account`)).status).toBe(200);
    await browser.close();
    await thief.close();
  });

  it('fail/a cross-site navigation cannot sign the user out (and end the provider session via id_token_hint)', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    // What an attacker page's window.open('https://gateway/.meshauth/logout') makes the browser send (Lax cookies go).
    const out = await browser.fetch(`${mesh.origin}/.meshauth/logout`, { headers: { 'sec-fetch-site': 'cross-site' } });
    expect(out.status).toBe(403);
    expect(browser.cookie(SESSION)).toBeDefined();
    await browser.close();
  });
});
