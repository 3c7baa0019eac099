// mintJwtSvid: the token's lifetime is the configured TTL, at most 5 minutes, and never past the end of the
// X509-SVID its caller authenticated with (a bearer token that outlived that certificate kept a workload's identity
// usable after the CA stopped renewing it).
import { decodeJwt, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { mintJwtSvid } from '../../../src/ca/index.js';
import { SpiffeId } from '../../../src/identity/index.js';

async function mint(ttlMs: number, notAfter?: Date) {
  const { privateKey } = await generateKeyPair('ES256');
  const key = { kid: 'k1', privateKey, publicJwk: {} };
  const now = new Date('2026-12-07T12:00:00.400Z');
  const minted = await mintJwtSvid({
    key,
    issuer: 'https://ca.example.org',
    subject: SpiffeId.parse('spiffe://example.org/ns/shop/sa/web'),
    audience: 'shop',
    ttlMs,
    now,
    ...(notAfter === undefined ? {} : { notAfter }),
  });
  const claims = decodeJwt(minted.token);
  return { minted, claims, now };
}

describe('mintJwtSvid lifetime', () => {
  it('ok/the configured TTL when the caller’s SVID outlasts it', async () => {
    const { minted, claims } = await mint(120_000, new Date('2026-12-07T13:00:00Z'));
    expect(minted.expiresIn).toBe(120);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120);
  });

  it('ok/at most 5 minutes whatever the TTL', async () => {
    const { minted } = await mint(60 * 60_000);
    expect(minted.expiresIn).toBe(300);
  });

  it('fail/a token past the caller’s SVID → cut to its notAfter', async () => {
    const notAfter = new Date('2026-12-07T12:01:30.900Z');
    const { minted, claims } = await mint(300_000, notAfter);
    expect(minted.expiresIn).toBe(90);
    expect((claims.exp ?? 0) * 1000).toBeLessThanOrEqual(notAfter.getTime());
    expect(minted.expiresAt.getTime()).toBeLessThanOrEqual(notAfter.getTime());
  });
});
