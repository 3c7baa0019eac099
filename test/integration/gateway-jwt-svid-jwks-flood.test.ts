// The gateway's JWT-SVID verifier while the CA's JWKS cannot be loaded: found by an outside test (2026-12-03)
// sending a stream of tokens that name the CA as issuer (anyone can write one; no signature is needed to reach the
// key lookup) while the CA's /v1/jwks answered 500. With no key set loaded yet, every token fetched the JWKS again,
// so each request to the public listener became one request to the CA. A failed load now waits the unknown-kid
// cooldown (30 s) like any other on-demand fetch; once the CA answers again, the next token after it loads the keys.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { JwtSvidVerifier } from '../../src/gateway/jwt-svid-verifier.js';
import { TrustDomain } from '../../src/identity/index.js';
import { silentLogger } from '../../src/telemetry/index.js';
import { type SigningKey, signingKey, tokenRejection } from '../helpers/end-user-keys.js';
import { FlappingJwks } from '../helpers/flapping-jwks.js';
import { TestCa } from '../helpers/test-ca.js';

const AUDIENCE = 'shop-gateway';
const COOLDOWN_MS = 30_000;

let jwks: FlappingJwks;
let verifier: JwtSvidVerifier;
let key: SigningKey;
let dir: string;

beforeAll(async () => {
  const ca = await TestCa.create('example.org');
  dir = mkdtempSync(join(tmpdir(), 'meshauth-jwt-svid-'));
  const bundleFile = join(dir, 'bundle.pem');
  writeFileSync(bundleFile, ca.rootPem);
  key = await signingKey('ca-1');
  jwks = new FlappingJwks();
  jwks.keys = [key];
  await jwks.serve('status_500');
  verifier = new JwtSvidVerifier({
    settings: { issuer: jwks.url, audiences: [AUDIENCE] },
    caUrl: jwks.url,
    bundleFile,
    trustDomain: TrustDomain.parse('example.org'),
    logger: silentLogger(),
  });
});

afterEach(() => {
  vi.useRealTimers();
});

afterAll(async () => {
  await verifier?.close();
  await jwks?.down();
  rmSync(dir, { recursive: true, force: true });
});

function jwtSvid(): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(jwks.url)
    .setAudience(AUDIENCE)
    .setSubject('spiffe://example.org/ns/batch/sa/reports')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

describe('JWT-SVID verifier without a loaded key set', () => {
  it('fail/flood: 40 tokens while the CA JWKS answers 500 cost one fetch; the keys load after the cooldown', async () => {
    // Only Date is faked: the sockets and their timers stay real.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const token = await jwtSvid();
    const reasons: (string | undefined)[] = [];
    for (let i = 0; i < 40; i++) reasons.push(await tokenRejection(verifier, token));
    expect(new Set(reasons)).toEqual(new Set(['jwks_unavailable']));
    expect(jwks.requests).toBe(1);

    // The CA is back: within the cooldown nothing is fetched; after it, the next token loads the keys and passes.
    jwks.mode = 'ok';
    expect(await tokenRejection(verifier, token)).toBe('jwks_unavailable');
    expect(jwks.requests).toBe(1);
    vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
    expect(await tokenRejection(verifier, await jwtSvid())).toBeUndefined();
    expect(jwks.requests).toBe(2);
  });
});
