// The session's cookies must fit in the head the gateway itself accepts (limits.maxHeaderBytes). A session too large
// for it used to be chunked into as many cookies as it needed, up to four, whatever that limit: the sign-in
// succeeded, and every later request of that browser, the return page and /.meshauth/logout included, was refused
// for the size of its own Cookie header until the cookies expired (absoluteTimeout). Such a sign-in now fails with
// MESHAUTH_ERR_SESSION_TOO_LARGE and leaves no session cookie; a quarter of the head stays for the browser's other
// headers and the services' cookies. The log line says which part is large and what to change.
// A large ID token alone no longer fails the sign-in: it is left out of the session (gateway-id-token-in-session).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const MAX_HEADER_BYTES = 8192;
// `tenant` is one of oidc.claims: the session keeps it (and the passport carries it, under limits.maxClaimBytes).
const BOB = { ...ALICE, username: 'bob', claims: { ...ALICE.claims, tenant: 't'.repeat(5500) } };

describe('gateway: session cookies and the head limit', () => {
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      users: [ALICE, BOB],
      gateway: (base) => ({ ...base, limits: { maxHeaderBytes: MAX_HEADER_BYTES, maxClaimBytes: 8192 } }),
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/a session whose cookies would not fit in the head limit is refused at sign-in, not locking the browser out', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const landed = await browser.signIn(`${mesh.origin}/shop/orders`, BOB.username, BOB.password);
    expect(landed.status).toBe(500);
    expect(landed.body).toContain('MESHAUTH_ERR_SESSION_TOO_LARGE');
    expect(browser.cookiesStartingWith('__Host-meshauth').filter((c) => !c.name.includes('-login-'))).toEqual([]);
    const failed = mesh.log.find({ event: 'login', result: 'failed', reason: 'session_too_large' });
    expect(failed).toHaveLength(1);
    expect(failed[0]?.err).toMatch(
      /its largest part \(\d+ characters\) is the claims kept: keep fewer in oidc\.claims/,
    );
    // The browser can still use the gateway: the next visit starts a sign-in, logout answers.
    expect((await browser.fetch(`${mesh.origin}/shop/orders`)).status).toBe(302);
    expect((await browser.fetch(`${mesh.origin}/.meshauth/logout`)).status).toBe(302);
    await browser.close();
  });

  it('ok/a usual session signs in under the same limit', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const landed = await browser.signIn(`${mesh.origin}/shop/orders`, ALICE.username, ALICE.password);
    expect(landed.status).toBe(200);
    expect(JSON.parse(landed.body).user.sub).toBe('alice');
    await browser.close();
  });
});
