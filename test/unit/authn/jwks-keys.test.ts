// Which published keys are usable (RFC 8725 §3.1, §3.4).
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, generateKeyPair, generateSecret, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { usableKeys } from '../../../src/authn/index.js';

let ec: JWK;
let ecPrivate: JWK;
let rsa2048: JWK;
let rsa1024: JWK;
let ed: JWK;
let oct: JWK;

beforeAll(async () => {
  const ecPair = await generateKeyPair('ES256', { extractable: true });
  ec = { ...(await exportJWK(ecPair.publicKey)), kid: 'ec' };
  ecPrivate = { ...(await exportJWK(ecPair.privateKey)), kid: 'ec-private' };
  rsa2048 = { ...(await exportJWK((await generateKeyPair('RS256', { modulusLength: 2048 })).publicKey)), kid: 'rsa' };
  // jose refuses to generate RSA under 2048 bits; node:crypto does, as a careless issuer would.
  rsa1024 = {
    ...(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) as JWK),
    kid: 'rsa1024',
  };
  ed = { ...(await exportJWK((await generateKeyPair('EdDSA')).publicKey)), kid: 'ed' };
  oct = { ...(await exportJWK(await generateSecret('HS256', { extractable: true }))), kid: 'oct' };
});

describe('usableKeys', () => {
  it('ok/EC, RSA-2048 and Ed25519 keys with their algorithms', async () => {
    const { keys, rejected } = await usableKeys({ keys: [ec, rsa2048, ed] });
    expect(rejected).toEqual([]);
    expect(keys.map((k) => [k.kid, [...k.algorithms].sort()])).toEqual([
      ['ec', ['ES256']],
      ['rsa', ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512']],
      ['ed', ['Ed25519', 'EdDSA']],
    ]);
  });

  it('ok/a JWK alg binds the key to that one algorithm', async () => {
    const { keys } = await usableKeys({ keys: [{ ...rsa2048, alg: 'PS256' }] });
    expect([...(keys[0]?.algorithms ?? [])]).toEqual(['PS256']);
  });

  const DROPPED: [string, () => JWK, string][] = [
    ['fail/symmetric (kty oct)', () => oct, 'symmetric'],
    ['fail/RSA 1024', () => rsa1024, 'rsa_too_small'],
    ['fail/use enc', () => ({ ...ec, use: 'enc' }), 'use_not_sig'],
    ['fail/key_ops without verify', () => ({ ...ec, key_ops: ['encrypt'] }), 'key_ops'],
    ['fail/private key published', () => ecPrivate, 'private_key'],
    ['fail/alg does not fit the key type', () => ({ ...ec, alg: 'RS256' }), 'alg_mismatch'],
    ['fail/EC point off the curve', () => ({ ...ec, y: ec.x as string }), 'import_failed'],
    ['fail/unsupported curve', () => ({ ...ec, crv: 'secp256k1' }), 'unsupported_type'],
    ['fail/no kty', () => ({ kid: 'x' }) as JWK, 'no_kty'],
  ];
  for (const [name, make, why] of DROPPED) {
    it(name, async () => {
      const { keys, rejected } = await usableKeys({ keys: [make(), ec] });
      expect(keys.map((k) => k.kid)).toEqual(['ec']);
      expect(rejected).toEqual([why]);
    });
  }

  it('fail/not a JWKS document', async () => {
    for (const doc of [null, [], { keys: {} }, 'x']) {
      await expect(usableKeys(doc)).rejects.toThrow(/keys/);
    }
  });

  it('fail/more than 64 keys are cut off', async () => {
    const { keys, rejected } = await usableKeys({
      keys: Array.from({ length: 70 }, (_, i) => ({ ...ec, kid: `k${i}` })),
    });
    expect(keys).toHaveLength(64);
    expect(rejected).toEqual(['too_many_keys']);
  });
});
