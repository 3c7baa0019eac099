// A session renewed with the refresh token stays the session of the user who signed in: an ID token in the refresh
// response for another sub (a provider that mixed up grants; openid-client already holds its iss to the issuer) is
// refused and the session keeps its user until its access token ends, never switching to that user. A renewal whose
// session no longer fits in its cookies (more claims) is a failed renewal too, not an error on every request; a new
// ID token too large to keep is left out of the session instead (found in review: it failed the renewal, and at
// sign-in it failed the sign-in, although the ID token only serves as a hint at sign-out).
import { describe, expect, it } from 'vitest';
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
  const metrics = new Metrics();
  const log = logLines('edge');
  const rp = {
    refresh: async (): Promise<TokenResult> => ({
      idClaims,
      accessToken: 'at-2',
      accessExpiresAt: NOW + 300,
      refreshToken: 'rt-2',
      idToken,
      scope: 'openid',
    }),
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
  const session: SessionData = {
    sid: 'sid-1',
    claims: { sub: 'alice', iss: ISSUER },
    createdAt: NOW - 100,
    seenAt: NOW - 10,
    accessExpiresAt: NOW + 30, // within refreshBefore: the next request renews
    refreshToken: 'rt-1',
  };
  const cookies = new Map<string, string>();
  for (const line of codec.write(session, cookies)) {
    const pair = line.split(';')[0] as string;
    cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
  }
  return { sessions, cookies, metrics, log };
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

  it('fail/a refresh whose ID token names another sub is refused: the user stays alice, counted, one log line', async () => {
    const { sessions, cookies, metrics, log } = sessionsRefreshingTo({ sub: 'mallory', iss: ISSUER });
    const setCookies: string[] = [];
    const resolved = await sessions.resolve(cookies, NOW, setCookies);
    expect(resolved?.user.sub).toBe('alice');
    expect(resolved?.user.iss).toBe(ISSUER);
    expect(resolved?.session.accessExpiresAt).toBe(NOW + 30);
    expect(await refreshes(metrics, 'subject_mismatch')).toBe(1);
    expect(log.find({ event: 'session_refresh_failed', reason: 'subject_mismatch' })).toHaveLength(1);
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
});
