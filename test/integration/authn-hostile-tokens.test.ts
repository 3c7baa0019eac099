// Hand-forged hostile end-user tokens against a verifier whose keys come from a real oidc-provider issuer. Forgeries
// that need a valid signature use the issuer's own private key, so each case fails for the reason it names and not for
// a bad signature.
import { createPublicKey } from 'node:crypto';
import { CompactSign, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndUserVerifier } from '../../src/authn/index.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';

const AUDIENCE = 'shop';
const SKEW = 30;

let issuer: OidcIssuer;
let verifier: EndUserVerifier;
let typedVerifier: EndUserVerifier;
let metrics: Metrics;
let issuerKey: CryptoKey;
let issuerJwk: Readonly<JWK>;
let otherEcKey: CryptoKey;
let otherEcPublicJwk: JWK;
let otherRsaKey: CryptoKey;
const now = Math.floor(Date.now() / 1000);

beforeAll(async () => {
  issuer = await startOidcIssuer({ audience: AUDIENCE });
  metrics = new Metrics();
  const config = (typ?: string) => ({
    required: true,
    issuers: [
      {
        issuer: issuer.issuer,
        audiences: [AUDIENCE],
        jwksUri: issuer.jwksUri,
        algorithms: ['ES256', 'ES384'],
        ...(typ === undefined ? {} : { typ }),
      },
    ],
    vouchers: [],
    claims: ['scope'],
  });
  verifier = new EndUserVerifier({ config: config(), metrics, now: () => now * 1000 });
  typedVerifier = new EndUserVerifier({ config: config('at+jwt'), now: () => now * 1000 });
  issuerJwk = issuer.signingKey();
  issuerKey = (await importJWK(issuerJwk, 'ES256')) as CryptoKey;
  const otherEc = await generateKeyPair('ES256', { extractable: true });
  otherEcKey = otherEc.privateKey;
  otherEcPublicJwk = await exportJWK(otherEc.publicKey);
  otherRsaKey = (await generateKeyPair('RS256', { modulusLength: 2048 })).privateKey;
});
afterAll(async () => {
  await verifier?.close();
  await typedVerifier?.close();
  await issuer?.close();
});

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: issuer.issuer,
    sub: 'alice',
    aud: AUDIENCE,
    iat: now - 10,
    exp: now + 300,
    scope: 'orders:read',
    ...overrides,
  };
}

function header(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { alg: 'ES256', typ: 'at+jwt', kid: issuerJwk.kid, ...overrides };
}

/** Signs exactly the given header and payload text (no claim checks on our side: we want hostile input). */
async function sign(
  hdr: Record<string, unknown>,
  payload: Record<string, unknown> | string,
  key: CryptoKey | Uint8Array = issuerKey,
): Promise<string> {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return new CompactSign(new TextEncoder().encode(text)).setProtectedHeader(hdr as { alg: string }).sign(key);
}

/** ES256 over any header at all (jose's signer refuses unknown `crit`, which is the point of the test). */
async function signRaw(hdr: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  const input = `${b64(hdr)}.${b64(payload)}`;
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    issuerKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}

function unsigned(hdr: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${b64(hdr)}.${b64(payload)}.${signature}`;
}

function flip(token: string, part: 0 | 1 | 2): string {
  const parts = token.split('.');
  const bytes = Buffer.from(parts[part] as string, 'base64url');
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

async function publicKeyPem(): Promise<Uint8Array> {
  const { d: _d, ...publicJwk } = issuerJwk;
  const pem = createPublicKey({ key: publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({
    type: 'spki',
    format: 'pem',
  });
  return new TextEncoder().encode(pem as string);
}

async function count(result: string): Promise<number> {
  const { values } = await metrics.tokenVerifications.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

type Case = readonly [name: string, reason: string | 'ok', token: () => Promise<string> | string];

const CASES: readonly Case[] = [
  ['ok/forged with the issuer key and sound claims', 'ok', () => sign(header(), claims())],
  ['ok/expired within the clock skew', 'ok', () => sign(header(), claims({ exp: now - SKEW + 5 }))],
  ['ok/typ absent', 'ok', () => sign(header({ typ: undefined }), claims())],
  // J01
  ...['none', 'None', 'nOnE', 'NONE'].map(
    (alg): Case => [
      `fail/alg ${alg} with empty signature`,
      'alg_not_allowed',
      () => unsigned(header({ alg }), claims()),
    ],
  ),
  ['fail/alg none with a signature', 'alg_not_allowed', () => unsigned(header({ alg: 'none' }), claims(), 'c2ln')],
  // J02
  [
    'fail/HS256 signed with the issuer public key PEM',
    'alg_not_allowed',
    async () => sign(header({ alg: 'HS256' }), claims(), await publicKeyPem()),
  ],
  [
    'fail/HS256 signed with the issuer public JWK JSON',
    'alg_not_allowed',
    async () => {
      const { d: _d, ...pub } = issuerJwk;
      return sign(header({ alg: 'HS256' }), claims(), new TextEncoder().encode(JSON.stringify(pub)));
    },
  ],
  [
    'fail/RS256 not in the issuer allow-list',
    'alg_not_allowed',
    () => sign(header({ alg: 'RS256' }), claims(), otherRsaKey),
  ],
  // J03
  [
    'fail/allowed alg the key is not for (ES384 on a P-256 key)',
    'alg_key_mismatch',
    () => unsigned(header({ alg: 'ES384' }), claims(), 'AAAA'),
  ],
  // J04
  ['fail/expired beyond the skew', 'expired', () => sign(header(), claims({ exp: now - SKEW - 1 }))],
  ['fail/exp missing', 'missing_exp', () => sign(header(), claims({ exp: undefined }))],
  ['fail/exp a string', 'missing_exp', () => sign(header(), claims({ exp: String(now + 300) }))],
  [
    'fail/exp 1e309 (Infinity)',
    'missing_exp',
    () => sign(header(), JSON.stringify(claims({ exp: 0 })).replace('"exp":0', '"exp":1e309')),
  ],
  // exp ceiling (inbound.endUser.maxTokenLifetime, 24 h by default): the issuer's signature does not make 1e20 sane.
  ['ok/exp a day ahead, within the skew', 'ok', () => sign(header(), claims({ exp: now + 86_400 + SKEW }))],
  ['fail/exp a day and the skew ahead', 'lifetime', () => sign(header(), claims({ exp: now + 86_400 + SKEW + 1 }))],
  ['fail/exp 1e20', 'lifetime', () => sign(header(), claims({ exp: 1e20 }))],
  [
    'fail/exp 1.7e308',
    'lifetime',
    () => sign(header(), JSON.stringify(claims({ exp: 0 })).replace('"exp":0', '"exp":1.7e308')),
  ],
  ['fail/iat before 1970', 'claims', () => sign(header(), claims({ iat: -1e300 }))],
  ['fail/nbf before 1970', 'claims', () => sign(header(), claims({ nbf: -1 }))],
  // J05
  ['fail/nbf in the future beyond the skew', 'not_yet_valid', () => sign(header(), claims({ nbf: now + SKEW + 1 }))],
  ['fail/iat absurdly in the future', 'not_yet_valid', () => sign(header(), claims({ iat: now + 86_400 }))],
  // J06
  ['fail/aud other', 'audience', () => sign(header(), claims({ aud: 'billing' }))],
  ['fail/aud missing', 'audience', () => sign(header(), claims({ aud: undefined }))],
  ['fail/aud empty array', 'audience', () => sign(header(), claims({ aud: [] }))],
  ['fail/aud ours as a substring', 'audience', () => sign(header(), claims({ aud: 'shop-x' }))],
  ['ok/aud ours among others', 'ok', () => sign(header(), claims({ aud: ['a', 'b', AUDIENCE] }))],
  // J07
  ['fail/iss not configured', 'issuer', () => sign(header(), claims({ iss: 'https://evil.example' }))],
  ['fail/iss trailing-slash variant', 'issuer', () => sign(header(), claims({ iss: `${issuer.issuer}/` }))],
  ['fail/iss case variant', 'issuer', () => sign(header(), claims({ iss: issuer.issuer.toUpperCase() }))],
  ['fail/iss missing', 'issuer', () => sign(header(), claims({ iss: undefined }))],
  // J08
  ['fail/unknown kid', 'unknown_kid', () => sign(header({ kid: 'no-such-key' }), claims(), otherEcKey)],
  ['fail/kid path traversal', 'unknown_kid', () => sign(header({ kid: '../../../../dev/null' }), claims())],
  ['fail/kid SQL', 'unknown_kid', () => sign(header({ kid: "' OR 1=1--" }), claims())],
  ['fail/kid 10 KB', 'unknown_kid', () => sign(header({ kid: 'k'.repeat(10_000) }), claims())],
  // J09
  ...['jku', 'x5u', 'jwk', 'x5c'].map(
    (name): Case => [
      `fail/${name} header`,
      'forbidden_header',
      async () => {
        const value = name === 'jwk' ? otherEcPublicJwk : name === 'x5c' ? ['MIIB'] : 'http://127.0.0.1:1/k';
        return sign(header({ [name]: value }), claims(), name === 'jwk' ? otherEcKey : issuerKey);
      },
    ],
  ),
  // J10
  ['ok/raw ES256 signer agrees with jose', 'ok', () => signRaw(header(), claims())],
  ['fail/crit with an unknown parameter', 'crit', () => signRaw(header({ crit: ['exp-x'], 'exp-x': 1 }), claims())],
  // J11
  ['fail/JWE (5 segments)', 'format', () => 'eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d'],
  [
    'fail/JSON serialization',
    'format',
    () => JSON.stringify({ payload: b64(claims()), protected: b64(header()), signature: 'AAAA' }),
  ],
  ['fail/base64 padding', 'format', async () => `${await sign(header(), claims())}=`],
  ['fail/characters outside base64url', 'format', async () => (await sign(header(), claims())).replace('.', '.+')],
  ['fail/garbage segments', 'format', () => 'abc.def.ghi'],
  ['fail/two segments', 'format', () => `${b64(header())}.${b64(claims())}`],
  ['fail/header is not JSON', 'format', () => `${b64('{"alg":')}.${b64(claims())}.AAAA`],
  ['fail/payload is an array', 'format', () => `${b64(header())}.${b64('[1]')}.AAAA`],
  ['fail/empty string', 'format', () => ''],
  // J12
  ['fail/17 KiB token', 'too_large', () => sign(header(), claims({ pad: 'x'.repeat(17 * 1024) }))],
  // J15
  ['fail/typ of another token kind', 'typ', () => sign(header({ typ: 'meshauth-passport+jwt' }), claims())],
  // J22
  ['fail/signature bit-flipped', 'signature', async () => flip(await sign(header(), claims()), 2)],
  [
    'fail/payload modified',
    'signature',
    async () => {
      const [h, , s] = (await sign(header(), claims())).split('.');
      return `${h}.${b64(claims({ scope: 'orders:write' }))}.${s}`;
    },
  ],
  [
    'fail/header modified',
    'signature',
    async () => {
      const [, p, s] = (await sign(header(), claims())).split('.');
      return `${b64(header({ typ: 'JWT' }))}.${p}.${s}`;
    },
  ],
  [
    'fail/signature truncated',
    'signature',
    async () => {
      const token = await sign(header(), claims());
      return token.slice(0, -10);
    },
  ],
  ['fail/signed by another key under the issuer kid', 'signature', () => sign(header(), claims(), otherEcKey)],
  // No subject at all
  ['fail/neither sub nor client_id', 'missing_sub', () => sign(header(), claims({ sub: undefined }))],
  // J13: claims JSON another parser could read differently, signed by the issuer's own key.
  [
    'fail/aud twice (JSON.parse keeps the last, other parsers the first)',
    'format',
    () => sign(header(), JSON.stringify(claims({ aud: 'billing' })).replace(/}$/, `,"aud":"${AUDIENCE}"}`)),
  ],
  [
    'fail/sub twice, the second spelled with an escape',
    'format',
    () => sign(header(), JSON.stringify(claims({ sub: 'mallory' })).replace(/}$/, ',"s\\u0075b":"alice"}')),
  ],
  [
    'fail/a name twice inside a nested claim',
    'format',
    () =>
      sign(header(), JSON.stringify(claims()).replace(/}$/, ',"realm_access":{"roles":["user"],"roles":["admin"]}}')),
  ],
  [
    'fail/claims nested 100 deep',
    'format',
    () => sign(header(), JSON.stringify(claims()).replace(/}$/, `,"x":${'['.repeat(100)}${']'.repeat(100)}}`)),
  ],
  ['fail/claims starting with a byte-order mark', 'format', () => sign(header(), `\uFEFF${JSON.stringify(claims())}`)],
  [
    'fail/a header name twice (signed as written)',
    'format',
    async () => {
      const kid = JSON.stringify(issuerJwk.kid);
      const input = `${b64(`{"alg":"ES256","typ":"at+jwt","kid":${kid},"typ":"JWT"}`)}.${b64(claims())}`;
      const signature = await crypto.subtle.sign(
        { name: 'ECDSA', hash: 'SHA-256' },
        issuerKey,
        new TextEncoder().encode(input),
      );
      return `${input}.${Buffer.from(signature).toString('base64url')}`;
    },
  ],
];

describe('hostile end-user tokens', () => {
  for (const [name, reason, make] of CASES) {
    it(name, async () => {
      const token = await make();
      const before = await count(reason);
      if (reason === 'ok') {
        expect((await verifier.verify(token)).sub).toBe('alice');
      } else {
        const error = await verifier.verify(token).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID')).toBe(true);
        expect((error as { reason: string }).reason).toBe(reason);
        expect((error as { status: number }).status).toBe(401);
      }
      expect(await count(reason)).toBe(before + 1);
    });
  }

  it('fail/typ JWT where at+jwt is configured (an ID token or another kind, J15)', async () => {
    const error = await typedVerifier.verify(await sign(header({ typ: 'JWT' }), claims())).catch((e: unknown) => e);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID') && error.reason).toBe('typ');
    expect((await typedVerifier.verify(await sign(header(), claims()))).sub).toBe('alice');
  });

  it('fail/the embedded jwk never verifies a self-signed token, even without the forbidden-header check', async () => {
    // A token signed by an attacker key whose public half sits in the header and whose kid is unknown.
    const jwk = otherEcPublicJwk;
    const error = await verifier
      .verify(await sign(header({ kid: 'attacker', jwk }), claims(), otherEcKey))
      .catch((e: unknown) => e);
    expect(isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID')).toBe(true);
  });
});
