// Signing out with one's own idle cookie (found in review): logout remembered the session only when the browser's
// cookie was still usable, so a user who came back after the idle timeout and signed out left a copy of the cookie
// that someone else kept re-stamping (a shared machine, a proxy log) working until the absolute timeout. Logout now
// remembers the session of any authentic session cookie, idle or past its absolute timeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { ALICE, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

const SESSION = '__Host-meshauth';
const MINUTE_MS = 60_000;

async function rejected(mesh: GatewayMesh, reason: string): Promise<number> {
  return (await mesh.metrics.gatewaySessionsRejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('gateway: signing out with an idle cookie', () => {
  let mesh: GatewayMesh;
  /** The gateway's clock runs this far ahead of the real one. */
  let aheadMs = 0;
  beforeAll(async () => {
    // The access token outlives the test's clock moves: no renewal, only the idle timeout (30 min) is at play.
    mesh = await startGatewayMesh({ accessTokenTtlSeconds: 7_200, now: () => new Date(Date.now() + aheadMs) });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it('fail/a copy re-stamped elsewhere is refused once the user signed out with the idle original', async () => {
    aheadMs = 0;
    const user = new ScriptedBrowser(mesh.ca.rootPem);
    const thief = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      await user.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
      const original = user.cookie(SESSION)?.value as string;
      expect(original).toBeDefined();
      thief.setCookie('127.0.0.1', SESSION, original);

      aheadMs = 20 * MINUTE_MS; // the copy is used: the gateway re-stamps it
      await thief.fetch(`${mesh.origin}/shop`);
      expect(thief.cookie(SESSION)?.value).not.toBe(original);

      aheadMs = 35 * MINUTE_MS; // the user's own cookie is idle now; they sign out
      const out = await user.fetch(`${mesh.origin}/.meshauth/logout`);
      expect(out.status).toBe(302);
      expect(user.cookie(SESSION)).toBeUndefined();

      const before = await rejected(mesh, 'revoked');
      const replay = await thief.fetch(`${mesh.origin}/shop`);
      expect(replay.status).toBe(302);
      expect(String(replay.headers.location)).toContain(`${mesh.provider.url}/auth?`);
      expect(thief.cookie(SESSION)).toBeUndefined();
      expect(await rejected(mesh, 'revoked')).toBe(before + 1);
      // The sign-out names its user, as a sign-out with a live cookie does.
      expect(mesh.log.find({ event: 'logout', sub: ALICE.username })).toHaveLength(1);
    } finally {
      aheadMs = 0;
      await user.close();
      await thief.close();
    }
  });

  it('ok/signing out with a cookie past its absolute timeout is a plain sign-out', async () => {
    aheadMs = 0;
    const user = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      await user.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
      aheadMs = 13 * 60 * MINUTE_MS; // past the 12 h absolute timeout
      const out = await user.fetch(`${mesh.origin}/.meshauth/logout`);
      expect(out.status).toBe(302);
      expect(user.cookie(SESSION)).toBeUndefined();
    } finally {
      aheadMs = 0;
      await user.close();
    }
  });
});
