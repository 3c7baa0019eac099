// key-der: the fixed-layout P-256 / Ed25519 encodings are node:crypto's own, byte for byte (leading zero bytes
// in a coordinate or in the private scalar included), and every other key goes through node:crypto unchanged.
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import {
  fixedLayoutKeyType,
  importSpki,
  pkcs8PemOf,
  privateKeyEncodings,
  spkiDerOf,
} from '../../../src/pki/key-der.js';

type Pair = { publicKey: KeyObject; privateKey: KeyObject };

// Keys are made on libuv's pool: on Node 20, exporting a key from generateKeyPairSync as JWK can deadlock when a
// garbage collection frees the generation job during the export (src/pki/csr.ts), and these loops export thousands.
const generate = promisify(generateKeyPair);
const p256 = (): Promise<Pair> => generate('ec', { namedCurve: 'prime256v1' });
const ed25519 = (): Promise<Pair> => generate('ed25519');

function expectSameAsNodeCrypto({ publicKey, privateKey }: Pair): void {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  expect(spkiDerOf(publicKey).equals(spki)).toBe(true);
  expect(spkiDerOf(privateKey).equals(spki)).toBe(true);
  expect(pkcs8PemOf(privateKey)).toBe(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  expect(importSpki(spki).equals(publicKey)).toBe(true);
  const both = privateKeyEncodings(privateKey);
  expect(both.spkiDer.equals(spki)).toBe(true);
  expect(both.pkcs8Pem).toBe(privateKey.export({ type: 'pkcs8', format: 'pem' }));
}

/** A key whose JWK member `member` starts with a zero byte (about one key in 256), within a bounded search. */
async function withLeadingZero(make: () => Promise<Pair>, member: 'x' | 'y' | 'd'): Promise<Pair> {
  for (let attempt = 0; attempt < 20_000; attempt++) {
    const pair = await make();
    const jwk = pair.privateKey.export({ format: 'jwk' });
    const value = jwk[member];
    if (value !== undefined && Buffer.from(value, 'base64url')[0] === 0) return pair;
  }
  throw new Error(`no key with a leading zero in ${member} after 20,000 keys`);
}

describe('key-der', () => {
  it('writes P-256 keys as node:crypto does', async () => {
    for (let i = 0; i < 200; i++) expectSameAsNodeCrypto(await p256());
  });

  it('writes Ed25519 keys as node:crypto does', async () => {
    for (let i = 0; i < 100; i++) expectSameAsNodeCrypto(await ed25519());
  });

  it.each(['x', 'y', 'd'] as const)('keeps a leading zero byte of the P-256 %s', async (member) => {
    expectSameAsNodeCrypto(await withLeadingZero(p256, member));
  });

  it.each(['x', 'd'] as const)('keeps a leading zero byte of the Ed25519 %s', async (member) => {
    expectSameAsNodeCrypto(await withLeadingZero(ed25519, member));
  });

  it('refuses a P-256 point that is not on the curve, whichever way this OpenSSL reads the key', async () => {
    const spki = (await p256()).publicKey.export({ type: 'spki', format: 'der' });
    const offCurve = Buffer.from(spki);
    offCurve[offCurve.length - 1] = ((offCurve[offCurve.length - 1] as number) + 1) & 0xff;
    expect(() => importSpki(offCurve)).toThrow();
    expect(importSpki(spki).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('says the type of a fixed-layout key from its bytes, and nothing for any other layout', async () => {
    const [ec, ed, rsa] = await Promise.all([
      p256(),
      ed25519(),
      generate('rsa', { modulusLength: 2048 }) as Promise<Pair>,
    ]);
    const spkiOf = (pair: Pair) => pair.publicKey.export({ type: 'spki', format: 'der' });
    expect(fixedLayoutKeyType(spkiOf(ec))).toBe('p256');
    expect(fixedLayoutKeyType(spkiOf(ed))).toBe('ed25519');
    expect(fixedLayoutKeyType(spkiOf(rsa))).toBeUndefined();
    expect(fixedLayoutKeyType(spkiOf(ec).subarray(0, 90))).toBeUndefined();
  });

  it('encodes P-256 and Ed25519 keys from their JWK alone, never through the DER encoder', async () => {
    const pairs = await Promise.all([p256(), ed25519()]);
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

  it('writes both encodings of a new key from one JWK export', async () => {
    for (const { privateKey } of await Promise.all([p256(), ed25519()])) {
      const spy = vi.spyOn(Object.getPrototypeOf(privateKey) as KeyObject, 'export');
      try {
        privateKeyEncodings(privateKey);
        expect(spy.mock.calls.map(([options]) => (options as { format?: string } | undefined)?.format)).toEqual([
          'jwk',
        ]);
      } finally {
        spy.mockRestore();
      }
    }
  });

  it('leaves other keys to node:crypto', async () => {
    expectSameAsNodeCrypto(await generate('rsa', { modulusLength: 2048 }));
    expectSameAsNodeCrypto(await generate('ec', { namedCurve: 'secp384r1' }));
  });

  it('refuses a P-256 point off the curve, as the DER decoder does', async () => {
    const spki = Buffer.from((await p256()).publicKey.export({ type: 'spki', format: 'der' }));
    spki[spki.length - 1] = (spki[spki.length - 1] as number) ^ 1;
    expect(() => importSpki(spki)).toThrow();
  });
});
