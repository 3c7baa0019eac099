// key-der: the fixed-layout P-256 / Ed25519 encodings are node:crypto's own, byte for byte (leading zero bytes
// in a coordinate or in the private scalar included), and every other key goes through node:crypto unchanged.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { importSpki, pkcs8PemOf, spkiDerOf } from '../../../src/pki/key-der.js';

type Pair = { publicKey: KeyObject; privateKey: KeyObject };

const p256 = (): Pair => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ed25519 = (): Pair => generateKeyPairSync('ed25519');

function expectSameAsNodeCrypto({ publicKey, privateKey }: Pair): void {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  expect(spkiDerOf(publicKey).equals(spki)).toBe(true);
  expect(spkiDerOf(privateKey).equals(spki)).toBe(true);
  expect(pkcs8PemOf(privateKey)).toBe(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  expect(importSpki(spki).equals(publicKey)).toBe(true);
}

/** A key whose JWK member `member` starts with a zero byte (about one key in 256), within a bounded search. */
function withLeadingZero(make: () => Pair, member: 'x' | 'y' | 'd'): Pair {
  for (let attempt = 0; attempt < 20_000; attempt++) {
    const pair = make();
    const jwk = pair.privateKey.export({ format: 'jwk' });
    const value = jwk[member];
    if (value !== undefined && Buffer.from(value, 'base64url')[0] === 0) return pair;
  }
  throw new Error(`no key with a leading zero in ${member} after 20,000 keys`);
}

describe('key-der', () => {
  it('writes P-256 keys as node:crypto does', () => {
    for (let i = 0; i < 200; i++) expectSameAsNodeCrypto(p256());
  });

  it('writes Ed25519 keys as node:crypto does', () => {
    for (let i = 0; i < 100; i++) expectSameAsNodeCrypto(ed25519());
  });

  it.each(['x', 'y', 'd'] as const)('keeps a leading zero byte of the P-256 %s', (member) => {
    expectSameAsNodeCrypto(withLeadingZero(p256, member));
  });

  it.each(['x', 'd'] as const)('keeps a leading zero byte of the Ed25519 %s', (member) => {
    expectSameAsNodeCrypto(withLeadingZero(ed25519, member));
  });

  it('encodes P-256 and Ed25519 keys from their JWK alone, never through the DER encoder', () => {
    const pairs = [p256(), ed25519()];
    const first = pairs[0] as Pair;
    // node:crypto defines export() on its public and private key classes, not on KeyObject itself.
    const spies = [first.publicKey, first.privateKey].map((key) =>
      vi.spyOn(Object.getPrototypeOf(key) as KeyObject, 'export'),
    );
    try {
      for (const { publicKey, privateKey } of pairs) {
        spkiDerOf(publicKey);
        spkiDerOf(privateKey);
        pkcs8PemOf(privateKey);
      }
      const formats = spies.flatMap((spy) =>
        spy.mock.calls.map(([options]) => (options as { format?: string } | undefined)?.format),
      );
      expect(formats.length).toBe(6);
      expect(formats.every((format) => format === 'jwk')).toBe(true);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('leaves other keys to node:crypto', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expectSameAsNodeCrypto(rsa);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expectSameAsNodeCrypto(p384);
  });

  it('refuses a P-256 point off the curve, as the DER decoder does', () => {
    const spki = Buffer.from(p256().publicKey.export({ type: 'spki', format: 'der' }));
    spki[spki.length - 1] = (spki[spki.length - 1] as number) ^ 1;
    expect(() => importSpki(spki)).toThrow();
  });
});
