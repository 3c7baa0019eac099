// Pre-login cookies do not pile up (found by an outside audit): every navigation to a login: required route without
// a session starts a sign-in, one sealed cookie each (10 min) with the return path in it. Six navigations with long
// paths (a popup an attacker's page steers) used to push the Cookie header past limits.maxHeaderBytes: 431 on every
// request, the callback included, for ten minutes. Now at most three sign-ins are in progress (the oldest cookie
// goes), and a return path longer than 512 characters returns to `/`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

describe('gateway: pre-login cookies', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh();
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/a few attacker-chosen navigations do not lock the browser out of the gateway', async () => {
    const victim = new ScriptedBrowser(mesh.ca.rootPem);
    const long = `/${'a'.repeat(2000)}`;
    for (let i = 0; i < 6; i++) {
      const page = await victim.fetch(`${mesh.origin}${long}${i}`);
      expect(page.status).toBe(302); // to the provider, with one more pre-login cookie
    }
    expect(victim.cookiesStartingWith('__Host-meshauth-login-').length).toBeLessThanOrEqual(3);
    // The victim now tries to use the site normally and sign in.
    const home = await victim.fetch(`${mesh.origin}/shop`);
    expect(home.status).toBe(302);
    const signedIn = await victim.submitLogin(
      await victim.navigate(String(home.headers.location)),
      ALICE.username,
      ALICE.password,
    );
    expect(signedIn.status).toBe(200);
    // The sign-in that finished cleared its own; at most two others are left to their own tabs (or ten minutes).
    expect(victim.cookiesStartingWith('__Host-meshauth-login-').length).toBeLessThanOrEqual(2);
    await victim.close();
  });
});
