// A session renewed with the refresh token stays the session of the user who signed in: an ID token in the refresh
// response for another sub (a provider that mixed up grants; openid-client already holds its iss to the issuer) is
// refused, and like every renewed ID token the gateway refuses it ends the session at once: cookies cleared, the
// sign-in remembered as signed out (found in review: the session rode out its access token). A refused refresh
// token, an outage or any other failure leaves the session to its access token (found in the review of that fix:
// signing users out then lost sibling replicas' renewals and sent everyone to sign in during an outage). A renewal
// whose session no longer fits in its cookies (more claims) is a failed renewal too, not an error on every request; a
// new ID token too large to keep is left out of the session instead (found in review: it failed the renewal, and at
// sign-in it failed the sign-in, although the ID token only serves as a hint at sign-out). A provider's `expires_in`
// never reaches past the session's absolute timeout, an access token that lasts to that end is not renewed, and two
// sign-ins that got the same refresh token renew each their own session.
import { describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { BrowserSessions } from '../../../src/gateway/browser-sessions.js';
import type { OidcSettings } from '../../../src/gateway/gateway-config.js';
import type { OidcRelyingParty, TokenResult } from '../../../src/gateway/oidc-relying-party.js';
import { SessionCodec, type SessionData } from '../../../src/gateway/session.js';
import { keyRingFromSecrets } from '../../../src/gateway/session-keys.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { logLines } from '../../helpers/log-lines.js';

const NOW = 1_800_000_000;
const ISSUER = 'https://idp.example';
const ring = keyRingFromSecrets([Buffer.from('k'.repeat(40))]);
const oidc = {
  issuer: ISSUER,
  clientId: 'gateway',
  scopes: ['openid'],
  claims: [],
  rolesClaim: 'roles',
  refreshBeforeMs: 60_000,
} as unknown as OidcSettings;

function sessionsRefreshingTo(idClaims: Record<string, unknown>, idToken = 'id-2') {
  return sessionsRefreshingWith(async () => ({
    idClaims,
    accessToken: 'at-2',
    accessExpiresAt: NOW + 300,
    refreshToken: 'rt-2',
    idToken,
    scope: 'openid',
  }));
}

/** Sessions whose provider answers every refresh with `refresh`; `cookies` hold session sid-1 (refresh token rt-1). */
function sessionsRefreshingWith(refresh: (refreshToken: string) => Promise<TokenResult>) {
  const metrics = new Metrics();
  const log = logLines('edge');
  const calls: string[] = [];
  const rp = {
    refresh: (refreshToken: string): Promise<TokenResult> => {
      calls.push(refreshToken);
      return refresh(refreshToken);
    },
  } as unknown as OidcRelyingParty;
  const codec = new SessionCodec({
    ring: () => ring,
    cookieName: '__Host-s',
    idleTimeoutMs: 600_000,
    absoluteTimeoutMs: 3_600_000,
    signedInBy: `${ISSUER} gateway`,
    maxCookieBytes: 12_288,
  });
  const sessions = new BrowserSessions({
    codec,
    relyingParty: rp,
    oidc,
    metrics,
    logger: log.logger,
    keepTokens: false,
  });
  const cookiesOf = (fields: Partial<SessionData> = {}): Map<string, string> => {
    const session: SessionData = {
      sid: 'sid-1',
      claims: { sub: 'alice', iss: ISSUER },
      createdAt: NOW - 100,
      seenAt: NOW - 10,
      accessExpiresAt: NOW + 30, // within refreshBefore: the next request renews
      refreshToken: 'rt-1',
      ...fields,
    };
    const cookies = new Map<string, string>();
    for (const line of codec.write(session, cookies)) {
      const pair = line.split(';')[0] as string;
      cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    }
    return cookies;
  };
  return { sessions, cookies: cookiesOf(), cookiesOf, metrics, log, calls };
}

function cleared(setCookies: readonly string[]): boolean {
  return setCookies.some((line) => line.startsWith('__Host-s=;') && line.includes('Max-Age=0'));
}

async function rejected(metrics: Metrics, reason: string): Promise<number> {
  return (await metrics.gatewaySessionsRejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

async function refreshes(metrics: Metrics, result: string): Promise<number> {
  return (await metrics.gatewaySessionRefreshes.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe('browser session renewal', () => {
  it('ok/a refresh with the same sub and iss renews the session', async () => {
    const { sessions, cookies, metrics } = sessionsRefreshingTo({ sub: 'alice', iss: ISSUER, email: 'a@x' });
    const setCookies: string[] = [];
    const resolved = await sessions.resolve(cookies, NOW, setCookies);
    expect(resolved?.user.sub).toBe('alice');
    expect(resolved?.session.accessExpiresAt).toBe(NOW + 300);
    expect(await refreshes(metrics, 'ok')).toBe(1);
  });

  it('fail/a refresh whose ID token names another sub ends the session at once: cookies cleared, counted, one log line', async () => {
    const { sessions, cookies, metrics, log } = sessionsRefreshingTo({ sub: 'mallory', iss: ISSUER });
    const setCookies: string[] = [];
    expect(await sessions.resolve(cookies, NOW, setCookies)).toBeUndefined();
    expect(cleared(setCookies)).toBe(true);
    expect(await refreshes(metrics, 'subject_mismatch')).toBe(1);
    expect(await rejected(metrics, 'refresh_refused')).toBe(1);
    expect(log.find({ event: 'session_refresh_failed', reason: 'subject_mismatch', signedOut: true })).toHaveLength(1);
    // A copy of the cookie is refused as signed out, never renewed into mallory's session.
    expect(await sessions.resolve(cookies, NOW + 1, [])).toBeUndefined();
    expect(await rejected(metrics, 'revoked')).toBe(1);
  });

  for (const [what, error] of [
    ['the refreshed ID token is for another audience', ['MESHAUTH_ERR_LOGIN_FAILED', 'aud_mismatch']],
    ['the refreshed ID token is not valid', ['MESHAUTH_ERR_LOGIN_FAILED', 'id_token_invalid']],
  ] as const) {
    it(`fail/${what}: the session ends at once, while its access token is still valid`, async () => {
      const [code, reason] = error;
      const { sessions, cookies, metrics, calls } = sessionsRefreshingWith(async () => {
        throw new MeshauthError(code, `sign-in refused: ${reason}`, { reason });
      });
      const setCookies: string[] = [];
      expect(await sessions.resolve(cookies, NOW, setCookies)).toBeUndefined();
      expect(cleared(setCookies)).toBe(true);
      expect(await refreshes(metrics, reason)).toBe(1);
      expect(await rejected(metrics, 'refresh_refused')).toBe(1);
      // Parallel requests with the same cookie are refused too, without asking the provider again.
      expect(await sessions.resolve(cookies, NOW, [])).toBeUndefined();
      expect(calls).toHaveLength(1);
    });
  }

  // A refused grant cannot be told from a sibling replica's renewal that rotated the refresh token first, and an
  // outage, a provider's other errors or a failure of our own must not sign users out (found in review).
  for (const [what, failure] of [
    [
      'an unavailable provider',
      () => new MeshauthError('MESHAUTH_ERR_IDP_UNAVAILABLE', 'down', { reason: 'idp_unavailable' }),
    ],
    [
      'a refused refresh token (invalid_grant)',
      () => new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'no', { reason: 'code_rejected' }),
    ],
    [
      "the token endpoint's other errors",
      () => new MeshauthError('MESHAUTH_ERR_LOGIN_FAILED', 'no', { reason: 'token_error' }),
    ],
    ['an unexpected failure', () => new TypeError('a bug')],
  ] as const) {
    it(`ok/${what} leaves the session until its access token expires, then it ends`, async () => {
      const { sessions, cookies, metrics } = sessionsRefreshingWith(async () => {
        throw failure();
      });
      const setCookies: string[] = [];
      expect((await sessions.resolve(cookies, NOW, setCookies))?.user.sub).toBe('alice');
      expect(cleared(setCookies)).toBe(false);
      expect(await rejected(metrics, 'refresh_refused')).toBe(0);
      const later: string[] = [];
      expect(await sessions.resolve(cookies, NOW + 30, later)).toBeUndefined();
      expect(cleared(later)).toBe(true);
    });
  }

  it('ok/an unavailable provider leaves the session until its access token expires, then it ends', async () => {
    const { sessions, cookies, metrics, log } = sessionsRefreshingWith(async () => {
      throw new MeshauthError('MESHAUTH_ERR_IDP_UNAVAILABLE', 'token endpoint failed', { reason: 'idp_unavailable' });
    });
    const setCookies: string[] = [];
    const resolved = await sessions.resolve(cookies, NOW, setCookies);
    expect(resolved?.user.sub).toBe('alice');
    expect(resolved?.session.accessExpiresAt).toBe(NOW + 30);
    expect(cleared(setCookies)).toBe(false);
    expect(await refreshes(metrics, 'idp_unavailable')).toBe(1);
    expect(log.find({ event: 'session_refresh_failed', reason: 'idp_unavailable', signedOut: false })).toHaveLength(1);
    const later: string[] = [];
    expect(await sessions.resolve(cookies, NOW + 30, later)).toBeUndefined();
    expect(cleared(later)).toBe(true);
    expect(await rejected(metrics, 'token_expired')).toBe(1);
  });

  it('fail/a renewal whose session no longer fits in its cookies is a failed renewal: counted once, then the session ends', async () => {
    // groups is always kept: a provider that now sends a long list makes the renewed session too large.
    const groups = Array.from({ length: 800 }, (_, i) => `group-${String(i).padStart(20, '0')}`);
    const { sessions, cookies, metrics, log } = sessionsRefreshingTo({ sub: 'alice', iss: ISSUER, groups });
    for (let i = 0; i < 3; i++) {
      const setCookies: string[] = [];
      const resolved = await sessions.resolve(cookies, NOW, setCookies);
      expect(resolved?.user.sub).toBe('alice'); // the current session serves until its access token ends
      expect(resolved?.session.accessExpiresAt).toBe(NOW + 30);
    }
    expect(await refreshes(metrics, 'session_too_large')).toBe(1);
    expect(log.find({ event: 'session_refresh_failed', reason: 'session_too_large' })).toHaveLength(1);
    const setCookies: string[] = [];
    expect(await sessions.resolve(cookies, NOW + 30, setCookies)).toBeUndefined();
    expect(setCookies.some((line) => line.startsWith('__Host-s=;') && line.includes('Max-Age=0'))).toBe(true);
  });

  it('ok/a renewal whose new ID token alone does not fit renews the session without the ID token, one log line', async () => {
    const { sessions, cookies, metrics, log } = sessionsRefreshingTo({ sub: 'alice', iss: ISSUER }, 'i'.repeat(20_000));
    const setCookies: string[] = [];
    const resolved = await sessions.resolve(cookies, NOW, setCookies);
    expect(resolved?.user.sub).toBe('alice');
    expect(resolved?.session.accessExpiresAt).toBe(NOW + 300);
    expect(resolved?.session.idToken).toBeUndefined();
    expect(await refreshes(metrics, 'ok')).toBe(1);
    expect(log.find({ event: 'session_id_token_dropped', sub: 'alice' })).toHaveLength(1);
  });

  it("ok/a provider's expires_in of years ends no later than the session's absolute timeout", async () => {
    const { sessions, cookies } = sessionsRefreshingWith(async () => ({
      idClaims: undefined,
      accessToken: 'at-2',
      accessExpiresAt: NOW + 1e12,
      refreshToken: 'rt-2',
      idToken: undefined,
      scope: 'openid',
    }));
    const resolved = await sessions.resolve(cookies, NOW, []);
    expect(resolved?.session.accessExpiresAt).toBe(NOW - 100 + 3_600); // createdAt + absoluteTimeout
    expect(resolved?.user.expiresAt).toBe(NOW - 100 + 3_600);
  });

  it("ok/an access token that lasts to the session's end is not renewed in the session's last minutes", async () => {
    // Found in review: with expires_in clamped to the session's end, every request of its last `refreshBefore` asked
    // the provider for a renewal that could not extend the session.
    const { sessions, cookiesOf, calls } = sessionsRefreshingTo({ sub: 'alice', iss: ISSUER });
    const cookies = cookiesOf({ createdAt: NOW + 30 - 3_600, accessExpiresAt: NOW + 30 });
    expect((await sessions.resolve(cookies, NOW, []))?.user.sub).toBe('alice');
    expect(calls).toHaveLength(0);
  });

  it('ok/two sign-ins that got the same refresh token renew each their own session', async () => {
    const { sessions, cookiesOf, calls } = sessionsRefreshingWith(async () => ({
      idClaims: undefined,
      accessToken: 'at-2',
      accessExpiresAt: NOW + 300,
      refreshToken: 'rt-2',
      idToken: undefined,
      scope: 'openid',
    }));
    const first = await sessions.resolve(cookiesOf({ sid: 'sid-a', createdAt: NOW - 100 }), NOW, []);
    const second = await sessions.resolve(
      cookiesOf({ sid: 'sid-b', createdAt: NOW - 50, claims: { sub: 'bob', iss: ISSUER } }),
      NOW,
      [],
    );
    expect(calls).toEqual(['rt-1', 'rt-1']);
    expect(first?.session).toMatchObject({ sid: 'sid-a', createdAt: NOW - 100 });
    expect(second?.session).toMatchObject({ sid: 'sid-b', createdAt: NOW - 50 });
    expect(second?.user.sub).toBe('bob');
  });
});
