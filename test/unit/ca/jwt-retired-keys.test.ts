// The retired JWT-key list: what /v1/jwks still publishes, what a rotation writes, and what the parser refuses.
import { describe, expect, it } from 'vitest';
import { RETIRED_KEY_RETENTION_MS } from '../../../src/ca/index.js';
import { liveRetiredKeys, parseRetiredKeys, retire } from '../../../src/ca/jwt-retired-keys.js';
import type { MeshauthError } from '../../../src/errors/index.js';

const jwk = (kid: string) => ({ kty: 'EC', crv: 'P-256', x: 'eA', y: 'eQ', kid, alg: 'ES256', use: 'sig' });
const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

describe('retired JWT keys', () => {
  it('ok/retire keeps the outgoing key for the retention time and drops expired entries', () => {
    const first = parseRetiredKeys(retire([], jwk('a'), T0), 'f');
    expect(first.map((k) => [k.jwk.kid, k.until.toISOString()])).toEqual([
      ['a', at(RETIRED_KEY_RETENTION_MS).toISOString()],
    ]);
    const later = at(RETIRED_KEY_RETENTION_MS + 1);
    const second = parseRetiredKeys(retire(first, jwk('b'), later), 'f');
    expect(second.map((k) => k.jwk.kid)).toEqual(['b']);
  });

  it.each([
    ['ok/live key published', 'active', 1000, ['a']],
    ['ok/expired key not published', 'active', RETIRED_KEY_RETENTION_MS, []],
    ['ok/the active key is never listed twice', 'a', 1000, []],
  ])('%s', (_name, activeKid, afterMs, kids) => {
    const keys = parseRetiredKeys(retire([], jwk('a'), T0), 'f');
    expect(liveRetiredKeys(keys, activeKid, at(afterMs)).map((k) => k.kid)).toEqual(kids);
  });

  it.each([
    ['fail/not JSON', '{'],
    [
      'fail/a private key member',
      JSON.stringify({ keys: [{ jwk: { ...jwk('a'), d: 'secret' }, until: T0.toISOString() }] }),
    ],
    ['fail/RSA key', JSON.stringify({ keys: [{ jwk: { ...jwk('a'), kty: 'RSA' }, until: T0.toISOString() }] })],
    ['fail/no until', JSON.stringify({ keys: [{ jwk: jwk('a') }] })],
  ])('%s → MESHAUTH_ERR_CONFIG_INVALID naming the file', (_name, text) => {
    let error: MeshauthError | undefined;
    try {
      parseRetiredKeys(text, '/etc/meshauth/ca/jwt-retired.json');
    } catch (e) {
      error = e as MeshauthError;
    }
    expect(error?.code).toBe('MESHAUTH_ERR_CONFIG_INVALID');
    expect(error?.message).toContain('/etc/meshauth/ca/jwt-retired.json');
  });
});
