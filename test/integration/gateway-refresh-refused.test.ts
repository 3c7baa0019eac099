// A renewal the provider refuses ends the browser session at once (found in review): a refused refresh, a revoked
// grant or a disabled user at the provider included, used to leave the session serving the old access token until
// it expired, up to `oidc.refreshBefore` for a revoked user. Now the request is treated as signed out: a navigation
// goes to sign in, an API call gets 401, the cookies are cleared. Only a provider that is unavailable leaves the
// session to its current access token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { type FakeOp, startScriptedOpMesh } from '../helpers/fake-op.js';
import type { GatewayMesh } from '../helpers/gateway-mesh.js';

const SESSION = '__Host-meshauth';

async function counted(
  mesh: GatewayMesh,
  metric: 'gatewaySessionsRejected' | 'gatewaySessionRefreshes',
  label: string,
) {
  return (await mesh.metrics[metric].get()).values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;
}

describe('gateway: a refused session renewal', () => {
  let op: FakeOp;
  let mesh: GatewayMesh;
  beforeAll(async () => {
    // Access tokens last 5 minutes and are renewed 10 minutes before they expire: every request renews, while the
    // current access token is still valid.
    ({ op, mesh } = await startScriptedOpMesh({ refreshBefore: '10m' }));
  });
  afterAll(async () => {
    await mesh?.close();
    await op?.close();
  });

  /** A browser signed in (its landing request already renewed once). */
  async function signedIn(): Promise<ScriptedBrowser> {
    op.refresh = 'ok';
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const page = await browser.navigate(`${mesh.origin}/shop`);
    expect(page.status, page.body).toBe(200);
    expect(browser.cookie(SESSION)).toBeDefined();
    return browser;
  }

  it('fail/the provider refuses the refresh token: a navigation goes to sign in, the cookies are cleared', async () => {
    const browser = await signedIn();
    try {
      op.refresh = 'invalid_grant';
      const refused = await counted(mesh, 'gatewaySessionRefreshes', 'code_rejected');
      const ended = await counted(mesh, 'gatewaySessionsRejected', 'refresh_refused');
      const page = await browser.fetch(`${mesh.origin}/shop`);
      expect(page.status).toBe(302);
      expect(String(page.headers.location)).toContain(`${op.issuer}/authorize?`);
      expect(browser.cookie(SESSION)).toBeUndefined();
      expect(await counted(mesh, 'gatewaySessionRefreshes', 'code_rejected')).toBe(refused + 1);
      expect(await counted(mesh, 'gatewaySessionsRejected', 'refresh_refused')).toBe(ended + 1);
      expect(mesh.log.find({ event: 'session_refresh_failed', reason: 'code_rejected', signedOut: true })).toHaveLength(
        refused + 1,
      );
    } finally {
      await browser.close();
    }
  });

  it('fail/the provider refuses the refresh token: an API call gets 401 MESHAUTH_ERR_LOGIN_REQUIRED, cookies cleared', async () => {
    const browser = await signedIn();
    try {
      const stolen = browser.cookie(SESSION)?.value as string;
      op.refresh = 'invalid_grant';
      const page = await browser.fetch(`${mesh.origin}/shop/api/orders`, {
        navigate: false,
        headers: { accept: 'application/json' },
      });
      expect(page.status).toBe(401);
      expect(page.body).toContain('MESHAUTH_ERR_LOGIN_REQUIRED');
      expect(browser.cookie(SESSION)).toBeUndefined();
      // A copy of the cookie ends with it, whatever the provider answers later.
      op.refresh = 'ok';
      const copy = new ScriptedBrowser(mesh.ca.rootPem);
      copy.setCookie('127.0.0.1', SESSION, stolen);
      const replay = await copy.fetch(`${mesh.origin}/shop`);
      await copy.close();
      expect(replay.status).toBe(302);
      expect(String(replay.headers.location)).toContain(`${op.issuer}/authorize?`);
    } finally {
      await browser.close();
    }
  });

  it('ok/an unavailable provider leaves the session to its current access token', async () => {
    const browser = await signedIn();
    try {
      op.refresh = 'server_error';
      const unavailable = await counted(mesh, 'gatewaySessionRefreshes', 'idp_unavailable');
      const page = await browser.fetch(`${mesh.origin}/shop`);
      expect(page.status, page.body).toBe(200);
      expect(JSON.parse(page.body).user.sub).toBe('mallory');
      expect(browser.cookie(SESSION)).toBeDefined();
      expect(await counted(mesh, 'gatewaySessionRefreshes', 'idp_unavailable')).toBe(unavailable + 1);
    } finally {
      op.refresh = 'none';
      await browser.close();
    }
  });
});
