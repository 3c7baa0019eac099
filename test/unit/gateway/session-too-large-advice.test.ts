// MESHAUTH_ERR_SESSION_TOO_LARGE names the part of the session that is large and the change that helps with it.
// Found in review: it always advised "keep fewer claims in oidc.claims", also when the claims were a few bytes and
// the ID token (or a forwarded access token) took the room, so the operator had nothing to change that would help.
import { describe, expect, it } from 'vitest';
import { isMeshauthError } from '../../../src/errors/index.js';
import { SessionCodec, type SessionData } from '../../../src/gateway/session.js';
import { keyRingFromSecrets } from '../../../src/gateway/session-keys.js';

const ring = keyRingFromSecrets([Buffer.from('k'.repeat(40))]);
const session: SessionData = {
  sid: 'sid-1',
  claims: { sub: 'alice', iss: 'https://idp.example' },
  createdAt: 1_800_000_000,
  seenAt: 1_800_000_000,
  accessExpiresAt: 1_800_000_300,
};

function messageFor(big: SessionData, maxCookieBytes: number): string {
  const codec = new SessionCodec({
    ring: () => ring,
    cookieName: '__Host-s',
    idleTimeoutMs: 600_000,
    absoluteTimeoutMs: 3_600_000,
    signedInBy: 'https://idp.example gateway',
    maxCookieBytes,
  });
  try {
    codec.checkFits(big);
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_SESSION_TOO_LARGE')) return error.message;
    throw error;
  }
  throw new Error('expected MESHAUTH_ERR_SESSION_TOO_LARGE');
}

describe('the advice of MESHAUTH_ERR_SESSION_TOO_LARGE', () => {
  it.each([
    [
      'claims',
      { ...session, claims: { ...session.claims, groups: ['g'.repeat(20_000)] } },
      /is the claims kept: keep fewer in oidc\.claims/,
    ],
    [
      'access token',
      { ...session, accessToken: 'a'.repeat(20_000) },
      /is the access token, kept because a route has forwardToken: true/,
    ],
    ['ID token', { ...session, idToken: 'i'.repeat(20_000) }, /is the ID token \(kept for sign-out at the provider\)/],
    ['refresh token', { ...session, refreshToken: 'r'.repeat(20_000) }, /is the refresh token the provider issues/],
  ] as const)('fail/past 4 cookies, the %s the largest part: named, with what helps', (_name, big, advice) => {
    const message = messageFor(big, 1_000_000);
    expect(message).toMatch(
      /^the session needs \d+ bytes, more than 4 cookies of 3800; its largest part \(20\d{3} characters\)/,
    );
    expect(message).toMatch(advice);
  });

  it('fail/past the Cookie header budget: the largest part named, and the limit to raise', () => {
    const message = messageFor({ ...session, idToken: 'i'.repeat(5_000) }, 4_096);
    expect(message).toMatch(/more than the 4096 that limits\.maxHeaderBytes leaves them; its largest part/);
    expect(message).toMatch(/is the ID token .*, or raise limits\.maxHeaderBytes$/);
    expect(message).not.toMatch(/oidc\.claims/);
  });
});
