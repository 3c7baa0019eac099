// Adversarial review of src/authn: the pure steps of end-user token handling — bearer extraction, pre-crypto shape
// checks, claims → EndUser, config validation.
import { describe, expect, it } from 'vitest';
import {
  type EndUserConfig,
  endUserFromClaims,
  extractBearer,
  inspectToken,
  usableKeys,
  validateEndUserConfig,
} from '../../../src/authn/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const JWT = `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64({ iss: 'https://idp', sub: 'alice' })}.c2ln`;

function bearer(value: string): string {
  try {
    return `token:${extractBearer({ authorization: value }) ?? '(none)'}`;
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED')) return `400:${error.reason}`;
    throw error;
  }
}

function shapeReason(token: string): string {
  try {
    inspectToken(token, 16_384);
    return 'ok';
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID')) return error.reason ?? '';
    throw error;
  }
}

describe('review/authn: the sidecar and the app must agree on whether a request carries a bearer token', () => {
  // An app that splits on /\s+/ (Express guides, passport-http-bearer) reads a token after a tab or a no-break
  // space. If the sidecar called that "no token", the raw, unverified token would reach the app untouched.
  it.each([
    ['fail/tab-after-scheme', `Bearer\t${JWT}`],
    ['fail/no-break-space-after-scheme', `Bearer\u00a0${JWT}`],
    ['fail/tab-and-spaces', `bearer \t ${JWT}`],
  ])('%s: the token is extracted and verified, never passed through as "none"', (_n, value) => {
    expect(bearer(value)).toBe(`token:${JWT}`);
  });

  it.each([
    ['fail/JWT under another scheme after a tab', `Token\t${JWT}`, '400:scheme'],
    // A JWT right after the scheme name reached the app, whose substring(7) read its claims: refused like one under
    // another scheme.
    ['fail/Bearer glued to the token', `Bearer${JWT}`, '400:scheme'],
    ['ok/Basic stays the app business', 'Basic\tdXNlcjpwYXNz', 'token:(none)'],
  ])('%s', (_n, value, expected) => {
    expect(bearer(value)).toBe(expected);
  });

  it('fail/duplicates are visible only in rawHeaders and are refused there', () => {
    expect(() => extractBearer(['Authorization', `Bearer ${JWT}`, 'authorization', 'Bearer x'])).toThrow(
      /more than one/,
    );
  });
});

describe('review/authn: pre-crypto shape checks (regression table)', () => {
  it.each([
    ['fail/alg NONE upper', { alg: 'NONE' }, 'alg_not_allowed'],
    ['fail/alg nOnE mixed', { alg: 'nOnE' }, 'alg_not_allowed'],
    ['fail/alg hs256 lower', { alg: 'hs256' }, 'alg_not_allowed'],
    ['fail/alg empty', { alg: '' }, 'alg_not_allowed'],
    ['fail/alg as array', { alg: ['ES256'] }, 'alg_not_allowed'],
    ['fail/embedded jwk', { alg: 'ES256', jwk: { kty: 'EC' } }, 'forbidden_header'],
    ['fail/jku', { alg: 'ES256', jku: 'https://evil/jwks' }, 'forbidden_header'],
    ['fail/x5u', { alg: 'ES256', x5u: 'https://evil/cert' }, 'forbidden_header'],
    ['fail/x5c', { alg: 'ES256', x5c: ['MII='] }, 'forbidden_header'],
    ['fail/crit even when empty', { alg: 'ES256', crit: [] }, 'crit'],
    ['fail/kid empty', { alg: 'ES256', kid: '' }, 'unknown_kid'],
    ['fail/kid object', { alg: 'ES256', kid: { $ne: null } }, 'unknown_kid'],
    ['fail/kid 257 chars', { alg: 'ES256', kid: 'k'.repeat(257) }, 'unknown_kid'],
    ['ok/kid __proto__ is just a string to compare', { alg: 'ES256', kid: '__proto__' }, 'ok'],
  ])('%s', (_n, header, reason) => {
    expect(shapeReason(`${b64(header)}.${b64({ iss: 'https://idp' })}.c2ln`)).toBe(reason);
  });

  it('fail/a JSON-serialized JWS or a token with whitespace never reaches the parser', () => {
    expect(shapeReason(JSON.stringify({ payload: 'x', signatures: [] }))).toBe('format');
    expect(shapeReason(` ${JWT}`)).toBe('format');
    expect(shapeReason(`${JWT}\n`)).toBe('format');
  });

  it('fail/iss from the payload must be a non-empty string (it only selects the issuer rules)', () => {
    for (const iss of ['', 7, null, { a: 1 }]) {
      expect(shapeReason(`${b64({ alg: 'ES256' })}.${b64({ iss })}.c2ln`), String(iss)).toBe('issuer');
    }
  });
});

describe('review/authn: claims → end user', () => {
  it.each([
    ['fail/sub a number with a client_id', { sub: 42, client_id: 'alice' }],
    ['fail/sub an object with a client_id', { sub: { id: 'x' }, client_id: 'alice' }],
    ['fail/sub an array with a client_id', { sub: ['root'], client_id: 'alice' }],
    ['fail/sub null with a client_id', { sub: null, client_id: 'alice' }],
  ])('%s: a malformed sub is a bad token, never silently replaced by client_id', (_n, claims) => {
    expect(endUserFromClaims({ iss: 'https://idp', exp: 1, ...claims }, [])).toBeUndefined();
  });

  it('ok/a token without sub still uses client_id (RFC 9068 client credentials)', () => {
    expect(endUserFromClaims({ iss: 'https://idp', exp: 1, client_id: 'svc' }, [])?.sub).toBe('svc');
  });

  it('fail/a __proto__ claim in the token never becomes the prototype of the policy view', () => {
    const verified = JSON.parse('{"sub":"a","iss":"x","exp":1,"__proto__":{"scope":"admin","groups":["root"]}}');
    const user = endUserFromClaims(verified, ['groups']);
    expect(user?.claims.scope).toBeUndefined();
    expect(user?.claims.groups).toBeUndefined();
    expect(Object.getPrototypeOf(user?.claims)).toBe(Object.prototype);
  });

  it('fail/a configured claim named __proto__ is refused at start-up (assigning it would set a prototype)', () => {
    const config: EndUserConfig = { required: false, issuers: [], vouchers: [], claims: ['scope', '__proto__'] };
    expect(() => validateEndUserConfig(config)).toThrow(/claim/);
  });

  it('ok/config claims named like Object members other than __proto__ stay own properties', () => {
    const user = endUserFromClaims({ sub: 'a', iss: 'x', exp: 1, constructor: 'c' }, ['constructor']);
    expect(Object.hasOwn(user?.exposed ?? {}, 'constructor')).toBe(true);
  });
});

describe('review/authn: JWKS members (regression)', () => {
  it('fail/an RSA key with a 2047-bit modulus (leading zero bytes do not count)', async () => {
    const n = Buffer.concat([Buffer.alloc(3), Buffer.from([0x7f]), Buffer.alloc(255, 0xff)]).toString('base64url');
    const { keys, rejected } = await usableKeys({ keys: [{ kty: 'RSA', n, e: 'AQAB' }] });
    expect(keys).toHaveLength(0);
    expect(rejected).toEqual(['rsa_too_small']);
  });

  it('fail/an OKP key that is not Ed25519 and an EC key with alg none', async () => {
    const { keys, rejected } = await usableKeys({
      keys: [
        { kty: 'OKP', crv: 'X25519', x: 'AA' },
        { kty: 'EC', crv: 'P-256', alg: 'none', x: 'AA', y: 'AA' },
      ],
    });
    expect(keys).toHaveLength(0);
    expect(rejected).toEqual(['unsupported_type', 'alg_mismatch']);
  });
});
