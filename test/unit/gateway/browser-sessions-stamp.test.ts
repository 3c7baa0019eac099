// Re-stamping the idle clock rewrites the session's cookies. A session made under a larger cookie budget than the
// gateway's current one (limits.maxHeaderBytes lowered since, or a session from a release without the budget) cannot
// be rewritten: it ends once, cookies cleared, counted and logged, instead of a 500 MESHAUTH_ERR_SESSION_TOO_LARGE on
// every request until its idle timeout (logout included).
import { describe, expect, it } from 'vitest';
import { BrowserSessions } from '../../../src/gateway/browser-sessions.js';
import { SessionCodec, type SessionData } from '../../../src/gateway/session.js';
import { keyRingFromSecrets } from '../../../src/gateway/session-keys.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { logLines } from '../../helpers/log-lines.js';

const NOW = 1_800_000_000;
const ring = keyRingFromSecrets([Buffer.from('k'.repeat(40))]);

function codec(maxCookieBytes: number): SessionCodec {
  return new SessionCodec({
    ring: () => ring,
    cookieName: '__Host-s',
    idleTimeoutMs: 3_600_000,
    absoluteTimeoutMs: 7_200_000,
    signedInBy: 'https://idp.example gateway',
    maxCookieBytes,
  });
}

/** The Cookie header's pairs for `session` written under `maxCookieBytes`. */
function cookiesOf(session: SessionData, maxCookieBytes: number): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const line of codec(maxCookieBytes).write(session, cookies)) {
    const pair = line.split(';')[0] as string;
    cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
  }
  return cookies;
}

async function rejected(metrics: Metrics, reason: string): Promise<number> {
  return (await metrics.gatewaySessionsRejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('browser session re-stamp', () => {
  const session: SessionData = {
    sid: 'sid-1',
    claims: { sub: 'alice', iss: 'https://idp.example', team: 't'.repeat(6_000) },
    createdAt: NOW - 1_000,
    seenAt: NOW - 900, // past the stamp interval: this request re-stamps
    accessExpiresAt: NOW + 3_000,
  };

  it('ok/a session that fits the budget is re-stamped', async () => {
    const metrics = new Metrics();
    const sessions = new BrowserSessions({
      codec: codec(12_288),
      relyingParty: undefined,
      oidc: undefined,
      metrics,
      logger: logLines('edge').logger,
      keepTokens: false,
    });
    const setCookies: string[] = [];
    const resolved = await sessions.resolve(cookiesOf(session, 12_288), NOW, setCookies);
    expect(resolved?.user.sub).toBe('alice');
    expect(resolved?.session.seenAt).toBe(NOW);
    expect(setCookies.some((line) => line.startsWith('__Host-s=') && !line.includes('Max-Age=0'))).toBe(true);
  });

  it('fail/a session over the current budget ends at its re-stamp: cleared, counted, one line, never a throw', async () => {
    const metrics = new Metrics();
    const log = logLines('edge');
    const sessions = new BrowserSessions({
      codec: codec(4_096),
      relyingParty: undefined,
      oidc: undefined,
      metrics,
      logger: log.logger,
      keepTokens: false,
    });
    const cookies = cookiesOf(session, 12_288);
    const setCookies: string[] = [];
    expect(await sessions.resolve(cookies, NOW, setCookies)).toBeUndefined();
    expect(setCookies.some((line) => line.startsWith('__Host-s=;') && line.includes('Max-Age=0'))).toBe(true);
    expect(await rejected(metrics, 'session_too_large')).toBe(1);
    expect(log.find({ event: 'session_rejected', reason: 'session_too_large' })).toMatchObject([{ sub: 'alice' }]);
  });
});
