// Pre-crypto checks (RFC 8725 bis "reject non-JWT syntax"): order and routing data.
import { describe, expect, it } from 'vitest';
import { inspectToken } from '../../../src/authn/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function reasonOf(token: string, max = 16_384): string | undefined {
  try {
    inspectToken(token, max);
    return undefined;
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID')) return error.reason;
    throw error;
  }
}

describe('inspectToken', () => {
  it('ok/returns alg, kid and the unverified iss', () => {
    const shape = inspectToken(`${b64({ alg: 'ES256', kid: 'k1' })}.${b64({ iss: 'https://i' })}.c2ln`, 16_384);
    expect(shape).toMatchObject({ alg: 'ES256', kid: 'k1', iss: 'https://i' });
  });

  it('fail/size is checked before syntax (a huge garbage string is too_large, not format)', () => {
    expect(reasonOf('{'.repeat(17 * 1024))).toBe('too_large');
    expect(reasonOf('é'.repeat(9_000))).toBe('too_large'); // 18,000 bytes in UTF-8
  });

  it('fail/alg HS384 and none are refused before the issuer is known', () => {
    expect(reasonOf(`${b64({ alg: 'HS384' })}.${b64({})}.c2ln`)).toBe('alg_not_allowed');
    expect(reasonOf(`${b64({ alg: 'none' })}.${b64({})}.`)).toBe('alg_not_allowed');
    expect(reasonOf(`${b64({})}.${b64({ iss: 'x' })}.c2ln`)).toBe('alg_not_allowed');
  });

  it('fail/b64 header (unencoded payload) is refused', () => {
    expect(reasonOf(`${b64({ alg: 'ES256', b64: false, crit: ['b64'] })}.${b64({ iss: 'x' })}.c2ln`)).toBe(
      'forbidden_header',
    );
  });

  it('fail/kid that is not a string', () => {
    expect(reasonOf(`${b64({ alg: 'ES256', kid: 7 })}.${b64({ iss: 'x' })}.c2ln`)).toBe('unknown_kid');
  });

  it('fail/header with invalid UTF-8', () => {
    const header = Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url');
    expect(reasonOf(`${header}.${b64({ iss: 'x' })}.c2ln`)).toBe('format');
  });

  it('fail/iss not a string', () => {
    expect(reasonOf(`${b64({ alg: 'ES256' })}.${b64({ iss: ['a'] })}.c2ln`)).toBe('issuer');
  });
});
