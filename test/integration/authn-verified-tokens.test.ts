// A bearer token verified once is kept by its text, so the next request with it costs a lookup, not a second full
// verification; what a kept token must still pass is its key (still the one its issuer's key set gives) and its times.
// The vouching sidecar then mints one origin passport per kept user while that origin has time left, so the hops
// after it find the origin in their own caches. Real JWKS server and files, real sidecars on 127.0.0.1.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndUserVerifier, type EndUserVerifierOptions } from '../../src/authn/index.js';
import { endUserToken, jwksText, type SigningKey, signingKey, tokenRejection } from '../helpers/end-user-keys.js';
import { waitFor } from '../helpers/fault-harness.js';
import { FlappingJwks } from '../helpers/flapping-jwks.js';
import { startApp, startTestSidecar, type TestApp, testConfig, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'shop';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let dir: string;
let key1: SigningKey;
let key2: SigningKey;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshauth-verified-tokens-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  [key1, key2] = await Promise.all([signingKey('k1'), signingKey('k2')]);
});

/** A verifier of ISSUER's tokens with its keys at `jwksUri`, its clock the test's (`clock.ms`). */
function verifierOn(
  jwksUri: string,
  clock: { ms: number },
  tunables: NonNullable<EndUserVerifierOptions['tunables']>,
): EndUserVerifier {
  const verifier = new EndUserVerifier({
    config: {
      required: true,
      issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwksUri }],
      vouchers: [],
      claims: ['scope'],
    },
    tunables,
    now: () => clock.ms,
  });
  cleanups.push(() => verifier.close());
  return verifier;
}

/** A verifier on a JWKS file, its clock the test's (`clock.ms`). */
function fileVerifier(file: string, clock: { ms: number }): EndUserVerifier {
  return verifierOn(pathToFileURL(file).href, clock, { jwksFileCheckIntervalMs: 20 });
}

/** A verifier on its own JWKS file of key 1, its clock set to `now` (whole seconds) until the test moves it. */
function verifierNow(name: string): { now: number; clock: { ms: number }; verifier: EndUserVerifier } {
  const file = join(dir, name);
  writeFileSync(file, jwksText(key1));
  const now = Math.floor(Date.now() / 1000);
  const clock = { ms: now * 1000 };
  return { now, clock, verifier: fileVerifier(file, clock) };
}

/** A token of key 1 with explicit times (seconds). */
function timedToken(times: { iat: number; exp: number; nbf?: number }, sub = 'alice'): Promise<string> {
  const jwt = new SignJWT({ scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', kid: key1.kid, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setIssuedAt(times.iat)
    .setExpirationTime(times.exp);
  if (times.nbf !== undefined) jwt.setNotBefore(times.nbf);
  return jwt.sign(key1.privateKey);
}

async function rejection(verifier: EndUserVerifier, token: string, forPassport = false) {
  try {
    await verifier.verify(token, { forPassport });
    return undefined;
  } catch (error) {
    return (error as { reason?: string }).reason;
  }
}

describe('verified tokens kept by the verifier', () => {
  it('ok/the same token gives back the same user; another token another', async () => {
    const file = join(dir, 'same.json');
    writeFileSync(file, jwksText(key1));
    const verifier = fileVerifier(file, { ms: Date.now() });
    const token = await endUserToken(key1, ISSUER, AUDIENCE);
    const first = await verifier.verify(token);
    expect(await verifier.verify(token)).toBe(first);
    const other = await verifier.verify(await endUserToken(key1, ISSUER, AUDIENCE, 'bob'));
    expect(other).not.toBe(first);
    expect(other.sub).toBe('bob');
  });

  it('fail/a kept token is refused once its exp is past the skew, and for a passport once its exp is past', async () => {
    const { now, clock, verifier } = verifierNow('times.json');
    const token = await timedToken({ iat: now, exp: now + 5 });
    expect(await rejection(verifier, token, true)).toBeUndefined();
    expect(await rejection(verifier, token, true)).toBeUndefined(); // kept

    clock.ms = (now + 6) * 1000; // past exp, within the 30 s skew
    expect(await rejection(verifier, token)).toBeUndefined(); // the skew still admits it without a passport
    expect(await rejection(verifier, token)).toBeUndefined(); // kept again
    expect(await rejection(verifier, token, true)).toBe('expired'); // no passport outlives the token, kept or not
    expect(await rejection(verifier, token)).toBeUndefined();

    clock.ms = (now + 5 + 30) * 1000; // exp exactly the skew ago: jose's edge, met by the kept token too
    expect(await rejection(verifier, token)).toBe('expired');
  });

  it('fail/a kept token whose key leaves the key set is refused; one whose key stays is still accepted', async () => {
    const file = join(dir, 'keys.json');
    writeFileSync(file, jwksText(key1, key2));
    const verifier = fileVerifier(file, { ms: Date.now() });
    verifier.start();
    const token1 = await endUserToken(key1, ISSUER, AUDIENCE);
    const token2 = await endUserToken(key2, ISSUER, AUDIENCE);
    await waitFor('both keys loaded', async () => (await tokenRejection(verifier, token2)) === undefined || undefined);
    expect(await tokenRejection(verifier, token1)).toBeUndefined();

    writeFileSync(`${file}.tmp`, jwksText(key2));
    renameSync(`${file}.tmp`, file);
    await waitFor('key 1 gone', async () => (await tokenRejection(verifier, token1)) === 'unknown_kid' || undefined);
    // The set was read again (new key objects): the kept token of key 2 is verified afresh, and passes.
    expect(await tokenRejection(verifier, token2)).toBeUndefined();
  });

  it('fail/a kept token is refused once its issuer’s key set is past max-stale with the issuer down; taken again when it is back', async () => {
    const jwks = new FlappingJwks();
    jwks.keys = [key1];
    await jwks.up();
    cleanups.push(() => jwks.down().catch(() => undefined));
    const clock = { ms: Date.now() };
    const verifier = verifierOn(jwks.url, clock, { jwksMaxStaleMs: 60_000, unknownKidCooldownMs: 1_000 });
    const token = await endUserToken(key1, ISSUER, AUDIENCE);
    expect(await rejection(verifier, token)).toBeUndefined();
    expect(await rejection(verifier, token)).toBeUndefined(); // kept

    await jwks.down();
    clock.ms += 50_000; // the key set is old but within max-stale: kept keys still serve while the issuer is down
    expect(await rejection(verifier, token)).toBeUndefined();
    clock.ms += 20_000; // past max-stale: no usable key, kept token or not
    expect(await rejection(verifier, token)).toBe('jwks_unavailable');
    expect(await rejection(verifier, await endUserToken(key1, ISSUER, AUDIENCE, 'bob'))).toBe('jwks_unavailable');

    await jwks.up();
    clock.ms += 2_000; // past the on-demand cooldown: the next token fetches the set again
    expect(await rejection(verifier, token)).toBeUndefined();
  });

  it('fail/a kept token is refused as not yet valid when the clock goes back past its nbf or iat', async () => {
    const { now, clock, verifier } = verifierNow('clock-back.json');
    const withNbf = await timedToken({ iat: now - 100, nbf: now, exp: now + 600 }, 'nbf-user');
    const withIat = await timedToken({ iat: now, exp: now + 600 }, 'iat-user');
    for (const token of [withNbf, withIat]) {
      expect(await rejection(verifier, token)).toBeUndefined();
      expect(await rejection(verifier, token)).toBeUndefined(); // kept
    }
    clock.ms = (now - 31) * 1000; // more than the 30 s skew before nbf, and before iat
    expect(await rejection(verifier, withNbf)).toBe('not_yet_valid');
    expect(await rejection(verifier, withIat)).toBe('not_yet_valid');
  });

  it('fail/a token refused is never kept: the same bad token is refused every time with its reason', async () => {
    const { now, verifier } = verifierNow('refused.json');
    const early = await timedToken({ iat: now, exp: now + 600, nbf: now + 120 });
    for (let i = 0; i < 3; i++) expect(await rejection(verifier, early)).toBe('not_yet_valid');
    const forged = `${(await endUserToken(key1, ISSUER, AUDIENCE)).slice(0, -4)}AAAA`;
    for (let i = 0; i < 3; i++) expect(await rejection(verifier, forged)).toBe('signature');
    // Refused by meshauth's own checks after jose's: kept only after every check, or the second call would pass.
    const noSubject = await new SignJWT({ scope: 'orders:read' })
      .setProtectedHeader({ alg: 'ES256', kid: key1.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(key1.privateKey);
    for (let i = 0; i < 3; i++) expect(await rejection(verifier, noSubject)).toBe('missing_sub');
  });
});

describe('the vouching sidecar mints one origin per kept user', () => {
  let jwks: FlappingJwks;
  let ca: TestCa;
  let app: TestApp;
  let a: Awaited<ReturnType<typeof startTestSidecar>>;
  let b: Awaited<ReturnType<typeof startTestSidecar>>;

  beforeAll(async () => {
    ca = await TestCa.create('example.org');
    jwks = new FlappingJwks();
    jwks.keys = [key1];
    await jwks.up();
    cleanups.push(() => jwks.down().catch(() => undefined));
    app = await startApp();
    cleanups.push(() => app.close());
    const idB = ca.idFor('/ns/shop/sa/b');
    b = await startTestSidecar(
      ca,
      idB,
      testConfig({ appPort: app.port, endUserIssuer: { url: jwks.url, audience: AUDIENCE } }),
    );
    cleanups.push(() => b.sidecar.close(0));
    a = await startTestSidecar(
      ca,
      ca.idFor('/ns/shop/sa/a'),
      testConfig({ appPort: 1, routes: { 'b.mesh': { address: `127.0.0.1:${b.sidecar.inboundPort}`, ids: [idB] } } }),
    );
    cleanups.push(() => a.sidecar.close(0));
  });

  /** The passport B's app got for one request with `token`. */
  async function passportFor(token: string): Promise<string> {
    const response = await viaProxy(a.sidecar.outboundPort, 'http://b.mesh/orders', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const passport = app.seen.at(-1)?.headers['x-meshauth-passport'];
    expect(typeof passport).toBe('string');
    return passport as string;
  }

  it('ok/requests with one token share its origin; another token gets another; a new SVID signs a new one', async () => {
    const token = await endUserToken(key1, jwks.url, AUDIENCE);
    const first = await passportFor(token);
    expect(await passportFor(token)).toBe(first);
    expect(await passportFor(token)).toBe(first);
    expect(await passportFor(await endUserToken(key1, jwks.url, AUDIENCE, 'bob'))).not.toBe(first);

    const renewed = await ca.issue({ id: ca.idFor('/ns/shop/sa/b') });
    b.holder.set({ svid: renewed.svid, bundle: ca.bundle });
    const after = await passportFor(token);
    expect(after).not.toBe(first);
    expect(await passportFor(token)).toBe(after);
  });
});
