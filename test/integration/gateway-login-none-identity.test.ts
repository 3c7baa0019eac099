// A `login: none` route carries no user and no passport (docs/gateway.md, Edge rules), also for a browser that is
// signed in: found by an outside audit, the edge handler used to mint the signed-in user's passport for every route,
// and a public route with two SPIFFE IDs then failed for signed-in users only (a passport needs one audience).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

describe('gateway: login none routes and the signed-in user', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      gateway: (base) => {
        const [web] = base.routes as Array<Record<string, unknown>>;
        const to = web?.to as { address: string; ids: string[] };
        return {
          ...base,
          routes: [
            web,
            // A public route (e.g. a status page or a third-party widget): no sign-in, so no end user is meant to go.
            { name: 'public', match: { host: '127.0.0.1', pathPrefix: '/public' }, to, login: 'none' },
            // A public route balanced over two identities (allowed for login: none, since it carries no passport).
            {
              name: 'status',
              match: { host: '127.0.0.1', pathPrefix: '/status' },
              to: { address: to.address, ids: [...to.ids, mesh0AppId(to.ids[0] as string)] },
              login: 'none',
            },
          ],
        };
      },
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/a login: none route gets no user and no passport, even when the browser is signed in', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const signedIn = await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    expect(signedIn.status).toBe(200);
    expect(JSON.parse(signedIn.body).user.sub).toBeDefined(); // the login: required route does get the user
    const page = await browser.fetch(`${mesh.origin}/public/page`);
    expect(page.status).toBe(200);
    const seen = JSON.parse(page.body);
    expect(seen.user).toBeUndefined();
    expect(seen.chain).toEqual([]);
    await browser.close();
  });

  it('fail/an escaped ? after a login: none prefix (/public%3F/…) → 400 PATH_AMBIGUOUS, neither route taken', async () => {
    // Read whole, the path is under `/` (sign-in required); cut at the escaped `?`, as an app that decodes first reads
    // it, it is `/public` (no sign-in): either route's requirements are wrong for the other reading.
    const anonymous = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await anonymous.fetch(`${mesh.origin}/public%3F/secret`);
    expect(page.status).toBe(400);
    expect(JSON.parse(page.body)).toMatchObject({ code: 'MESHAUTH_ERR_PATH_AMBIGUOUS' });
    expect((await anonymous.fetch(`${mesh.origin}/public/a%3Fb`)).status).toBe(200);
    await anonymous.close();
  });

  it('ok/a signed-in browser can still reach a login: none route with two SPIFFE IDs', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
    const anonymous = new ScriptedBrowser(mesh.ca.rootPem);
    expect((await anonymous.fetch(`${mesh.origin}/status/x`)).status).toBe(200);
    const page = await browser.fetch(`${mesh.origin}/status/x`);
    expect(page.body).not.toContain('MESHAUTH_ERR_PASSPORT_INVALID');
    expect(page.status).toBe(200);
    await browser.close();
    await anonymous.close();
  });
});

function mesh0AppId(webId: string): string {
  return webId.replace('/sa/web', '/sa/web-canary');
}
