// The raw ID token is kept in the session only for RP-initiated logout (`id_token_hint`): only when the provider has
// an end_session_endpoint, and only when the session fits in its cookies with it; otherwise the session goes without
// it (one log line) and sign-out at the provider sends `client_id` alone.
// Found in review: the ID token was always sealed into the session cookie, also for providers without
// end_session_endpoint, and a large one (group lists: 8–12 KB at Entra ID, Keycloak) failed every sign-in of that user
// with MESHAUTH_ERR_SESSION_TOO_LARGE and the advice "keep fewer claims in oidc.claims", which could not help.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcRelyingParty } from '../../src/gateway/oidc-relying-party.js';
import { ScriptedBrowser } from '../helpers/browser.js';
import { type FakeOp, startFakeOp } from '../helpers/fake-op.js';
import { ALICE, GATEWAY_CLIENT, type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';
import { logLines } from '../helpers/log-lines.js';
import { oidcSettings } from '../helpers/oidc-settings.js';

describe('a provider without end_session_endpoint', () => {
  let op: FakeOp;
  beforeAll(async () => {
    op = await startFakeOp(GATEWAY_CLIENT.clientId);
  });
  afterAll(async () => {
    await op?.close();
  });

  it('ok/its ID token is checked but not kept for the session', async () => {
    const settings = oidcSettings({ issuer: op.issuer, clientId: GATEWAY_CLIENT.clientId });
    const rp = new OidcRelyingParty(settings, logLines('gateway', 'info').logger);
    try {
      const start = await rp.startLogin();
      const approved = await request(start.url);
      await approved.body.dump();
      const back = new URL(String(approved.headers.location));
      const tokens = await rp.finishLogin(back.search, start);
      expect(tokens.idClaims?.sub).toBe('mallory');
      expect(tokens.idToken).toBeUndefined();
      expect(await rp.endSessionUrl(undefined, 'https://127.0.0.1:9443/')).toBeUndefined();
    } finally {
      await rp.close();
    }
  });
});

describe('a provider with end_session_endpoint', () => {
  const MAX_HEADER_BYTES = 8192;
  // `name` is in the ID token but not one of oidc.claims: a large ID token, small kept claims.
  const BOB = { ...ALICE, username: 'bob', claims: { ...ALICE.claims, name: 'b'.repeat(6000) } };
  let mesh: GatewayMesh;
  beforeAll(async () => {
    mesh = await startGatewayMesh({
      users: [ALICE, BOB],
      gateway: (base) => ({ ...base, limits: { maxHeaderBytes: MAX_HEADER_BYTES } }),
    });
  });
  afterAll(async () => {
    await mesh?.close();
  });

  async function logoutTarget(browser: ScriptedBrowser): Promise<URL> {
    const out = await browser.fetch(`${mesh.origin}/.meshauth/logout`);
    expect(out.status).toBe(302);
    return new URL(String(out.headers.location));
  }

  it('ok/a session with a small ID token keeps it: sign-out at the provider carries id_token_hint', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const landed = await browser.signIn(`${mesh.origin}/shop`, ALICE.username, ALICE.password);
      expect(landed.status, landed.body).toBe(200);
      const target = await logoutTarget(browser);
      expect(target.href.startsWith(mesh.provider.url)).toBe(true);
      expect(target.searchParams.get('id_token_hint')).toMatch(/^eyJ/);
      expect(target.searchParams.get('client_id')).toBe(GATEWAY_CLIENT.clientId);
    } finally {
      await browser.close();
    }
  });

  it('ok/an ID token too large for the cookies is left out: the sign-in completes, sign-out sends client_id alone', async () => {
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    try {
      const landed = await browser.signIn(`${mesh.origin}/shop`, BOB.username, BOB.password);
      expect(landed.status, landed.body).toBe(200);
      expect(JSON.parse(landed.body).user.sub).toBe('bob');
      expect(mesh.log.find({ event: 'session_id_token_dropped', sub: 'bob' })).toHaveLength(1);
      expect((await browser.fetch(`${mesh.origin}/shop/orders`)).status).toBe(200);
      const target = await logoutTarget(browser);
      expect(target.href.startsWith(mesh.provider.url)).toBe(true);
      expect(target.searchParams.has('id_token_hint')).toBe(false);
      expect(target.searchParams.get('client_id')).toBe(GATEWAY_CLIENT.clientId);
    } finally {
      await browser.close();
    }
  });
});
