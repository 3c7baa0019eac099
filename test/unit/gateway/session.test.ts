import { describe, expect, it } from 'vitest';
import { open, seal } from '../../../src/gateway/sealed-box.js';
import { SessionCodec, type SessionData } from '../../../src/gateway/session.js';
import { keyRingFromSecrets } from '../../../src/gateway/session-keys.js';

const ring = keyRingFromSecrets([Buffer.from('k'.repeat(40)), Buffer.from('o'.repeat(40))]);
const codec = new SessionCodec({
  ring: () => ring,
  cookieName: '__Host-s',
  idleTimeoutMs: 600_000,
  absoluteTimeoutMs: 3_600_000,
  signedInBy: 'https://idp gateway',
  maxCookieBytes: 12_288,
});
const NOW = 1_800_000_000;
const session: SessionData = {
  sid: 'unit-session',
  claims: { sub: 'alice', iss: 'https://idp' },
  createdAt: NOW,
  seenAt: NOW,
  accessExpiresAt: NOW + 300,
};

function jar(setCookies: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of setCookies) {
    const pair = line.split(';')[0] as string;
    const eq = pair.indexOf('=');
    if (!/Max-Age=0\b/.test(line)) out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

describe('session cookies', () => {
  it('ok/round trip with __Host- flags', () => {
    const cookies = codec.write(session, new Map());
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatch(/^__Host-s=[A-Za-z0-9_-]+; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    expect(codec.read(jar(cookies), NOW + 10)).toEqual({ session });
  });

  it('fail/idle and absolute timeouts', () => {
    const cookies = jar(codec.write(session, new Map()));
    expect(codec.read(cookies, NOW + 600)).toEqual({ failure: 'idle' });
    const active = jar(codec.write({ ...session, seenAt: NOW + 3_500 }, new Map()));
    expect(codec.read(active, NOW + 3_600)).toEqual({ failure: 'expired' });
  });

  it('ok/a large session is chunked and read back; stale chunks are cleared', () => {
    const big = { ...session, claims: { ...session.claims, blob: 'x'.repeat(6000) } };
    const cookies = codec.write(big, new Map());
    expect(cookies.length).toBe(3);
    expect(cookies[0]).toMatch(/^__Host-s=3:/);
    const read = codec.read(jar(cookies), NOW);
    expect(read).toEqual({ session: big });
    const smaller = codec.write(session, jar(cookies));
    expect(smaller.filter((c) => c.includes('Max-Age=0'))).toHaveLength(2);
    const missing = jar(cookies);
    missing.delete('__Host-s-2');
    expect(codec.read(missing, NOW)).toEqual({ failure: 'missing_chunk' });
  });

  it('fail/a session past 4 cookies is a clear error', () => {
    const huge = { ...session, claims: { ...session.claims, blob: 'x'.repeat(20_000) } };
    expect(() => codec.write(huge, new Map())).toThrow(
      expect.objectContaining({ code: 'MESHAUTH_ERR_SESSION_TOO_LARGE' }),
    );
  });

  it('fail/a session whose cookies would take more of the Cookie header than maxCookieBytes is a clear error', () => {
    const small = new SessionCodec({
      ring: () => ring,
      cookieName: '__Host-s',
      idleTimeoutMs: 600_000,
      absoluteTimeoutMs: 3_600_000,
      signedInBy: 'https://idp gateway',
      maxCookieBytes: 6_144,
    });
    const big = { ...session, claims: { ...session.claims, blob: 'x'.repeat(6000) } }; // three chunks, ~8 KB
    expect(() => small.write(big, new Map())).toThrow(
      expect.objectContaining({ code: 'MESHAUTH_ERR_SESSION_TOO_LARGE', reason: 'session_too_large' }),
    );
    const fits = small.write(session, new Map());
    expect(small.read(jar(fits), NOW)).toEqual({ session });
  });

  it('fail/a value sealed for another cookie name does not open (AAD)', () => {
    const sealed = seal(ring, '__Host-s-login', session);
    expect(open(ring, '__Host-s', sealed)).toEqual({ failure: 'tampered' });
  });

  it('fail/key secrets shorter than 32 bytes are refused', () => {
    expect(() => keyRingFromSecrets([Buffer.from('short')])).toThrow(/at least 32 bytes/);
  });

  it('ok/only the session and its chunks are ours', () => {
    expect(codec.owns('__Host-s')).toBe(true);
    expect(codec.owns('__Host-s-3')).toBe(true);
    expect(codec.owns('__Host-s-login')).toBe(false);
    expect(codec.owns('theme')).toBe(false);
  });
});
