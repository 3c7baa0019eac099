// The retired JWT-key list: what /v1/jwks still publishes, what a rotation writes, and what the parser refuses.
import { describe, expect, it } from 'vitest';
import { JWT_KEY_PUBLICATION_DELAY_MS, RETIRED_KEY_RETENTION_MS } from '../../../src/ca/index.js';
import { liveRetiredKeys, parseRetiredKeys, retire } from '../../../src/ca/jwt-retired-keys.js';
import type { MeshauthError } from '../../../src/errors/index.js';

const jwk = (kid: string) => ({ kty: 'EC', crv: 'P-256', x: 'eA', y: 'eQ', kid, alg: 'ES256', use: 'sig' });
const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

describe('retired JWT keys', () => {
  // The outgoing key signs on while the new one waits out its publication delay, then its tokens live on.
  const KEPT_MS = JWT_KEY_PUBLICATION_DELAY_MS + RETIRED_KEY_RETENTION_MS;

  it('ok/retire keeps the outgoing key for the delay plus the retention time and drops expired entries', () => {
    const first = parseRetiredKeys(retire([], jwk('a'), T0), 'f');
    expect(first.map((k) => [k.jwk.kid, k.until.toISOString()])).toEqual([['a', at(KEPT_MS).toISOString()]]);
    const later = at(KEPT_MS + 1);
    const second = parseRetiredKeys(retire(first, jwk('b'), later), 'f');
    expect(second.map((k) => k.jwk.kid)).toEqual(['b']);
  });

  // Found in review: a second rotation within the delay left the first outgoing key's `until` as it was, yet the
  // running replicas sign with that key until the second key's delay is up.
  it('ok/a second rotation within the delay keeps the key that may still sign as long as the new outgoing one', () => {
    const first = parseRetiredKeys(retire([], jwk('k0'), T0), 'f');
    const secondAt = JWT_KEY_PUBLICATION_DELAY_MS - 20_000;
    const second = parseRetiredKeys(retire(first, jwk('k1'), at(secondAt)), 'f');
    expect(second.map((k) => [k.jwk.kid, k.until.toISOString()])).toEqual([
      ['k0', at(secondAt + KEPT_MS).toISOString()],
      ['k1', at(secondAt + KEPT_MS).toISOString()],
    ]);
    // Past the delay the first key signs no more anywhere: its `until` stays.
    const thirdAt = secondAt + JWT_KEY_PUBLICATION_DELAY_MS + 1;
    const third = parseRetiredKeys(retire(second, jwk('k2'), at(thirdAt)), 'f');
    expect(third.find((k) => k.jwk.kid === 'k0')?.until.toISOString()).toBe(at(secondAt + KEPT_MS).toISOString());
  });

  // Found in review: retire() kept every live entry, so the 65th rotation within the retention time wrote a file the
  // parser refuses (no replica, and no later `ca serve` start, could load the keys).
  it('ok/rotations in a loop never write more entries than the parser takes; the soonest to leave go first', () => {
    const MAX_RETIRED_KEYS = 64; // what parseRetiredKeys accepts
    let keys = parseRetiredKeys(retire([], jwk('k0'), T0), 'f');
    for (let i = 1; i <= MAX_RETIRED_KEYS + 5; i++) keys = parseRetiredKeys(retire(keys, jwk(`k${i}`), at(i)), 'f');
    expect(keys).toHaveLength(MAX_RETIRED_KEYS);
    expect(keys.map((k) => k.jwk.kid)).not.toContain('k5');
    expect(keys.map((k) => k.jwk.kid)).toContain('k6');
    expect(keys.at(-1)?.jwk.kid).toBe(`k${MAX_RETIRED_KEYS + 5}`);
  });

  it.each([
    ['ok/live key published', 'active', 1000, ['a']],
    ['ok/expired key not published', 'active', JWT_KEY_PUBLICATION_DELAY_MS + RETIRED_KEY_RETENTION_MS, []],
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
