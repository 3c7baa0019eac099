// Differential property tests of verifyCsrPem's strict-DER fast path (src/pki/csr.ts) against a reference built
// from @peculiar/x509 (parse, verify) plus node:crypto key checks, and `openssl req -verify` on a sample.
// Requests are generated from real keys (P-256, Ed25519, RSA-2048) with random shapes — version, subject,
// SPKI, attributes (extension requests with extra, non-URI, critical, CA SANs...), signature algorithm vs key,
// non-minimal / indefinite lengths and long-form tags — re-signed so that the signature is never what refuses
// them, then mutated at byte level (bit flips, truncation, appended bytes, length-field edits).
// Property: whatever verifyCsrPem accepts, the reference accepts with the same SubjectPublicKeyInfo and key type.
import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { keyTypeOf, toPem, verifyCsrPem, x509 } from '../../../src/pki/index.js';
import { EncodingNoise, type HeaderForm, oid, tlv } from '../../helpers/der-writer.js';
import { fuzzParams, fuzzTimeout } from './fuzz-settings.js';

const RUNS = 150;

type KeyName = 'p256' | 'ed25519' | 'rsa2048';
interface TestKey {
  readonly privateKey: KeyObject;
  readonly spki: Buffer;
}
let keys: Record<KeyName, TestKey>;
let dir: string;

beforeAll(() => {
  const make = (pair: { privateKey: KeyObject; publicKey: KeyObject }): TestKey => ({
    privateKey: pair.privateKey,
    spki: pair.publicKey.export({ type: 'spki', format: 'der' }),
  });
  keys = {
    p256: make(generateKeyPairSync('ec', { namedCurve: 'P-256' })),
    ed25519: make(generateKeyPairSync('ed25519')),
    rsa2048: make(generateKeyPairSync('rsa', { modulusLength: 2048 })),
  };
  dir = mkdtempSync(join(tmpdir(), 'meshauth-csr-fuzz-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const NULL = Buffer.from([0x05, 0x00]);
/** AlgorithmIdentifier choices; the signature is always made with the request's own key. */
const ALGORITHMS = {
  ecdsaSha256: { oid: '1.2.840.10045.4.3.2', params: undefined },
  ecdsaSha384: { oid: '1.2.840.10045.4.3.3', params: undefined },
  ecdsaSha256Null: { oid: '1.2.840.10045.4.3.2', params: NULL },
  ed25519: { oid: '1.3.101.112', params: undefined },
  ed25519Null: { oid: '1.3.101.112', params: NULL },
  rsaSha256: { oid: '1.2.840.113549.1.1.11', params: NULL },
  rsaSha256NoParams: { oid: '1.2.840.113549.1.1.11', params: undefined },
  rsaSha512: { oid: '1.2.840.113549.1.1.13', params: NULL },
  rsaPss: { oid: '1.2.840.113549.1.1.10', params: NULL },
  unknown: { oid: '1.2.3.4.5', params: undefined },
} as const;
type AlgorithmName = keyof typeof ALGORITHMS;

/** The digest the request is signed with, from the algorithm named (its key's usual one when it does not fit). */
function digestFor(key: KeyName, algorithm: AlgorithmName): string | null {
  if (key === 'ed25519') return null;
  if (algorithm === 'ecdsaSha384') return 'sha384';
  if (algorithm === 'rsaSha512') return 'sha512';
  return 'sha256';
}

const SUBJECTS = ['empty', 'O=meshauth', 'empty-rdn', 'attribute-without-oid', 'two-rdns'] as const;
const ATTRIBUTES = [
  'empty',
  'absent',
  'set-tag',
  'san-uri',
  'san-two-uris',
  'san-dns-only',
  'critical-unknown',
  'ca-true',
  'key-cert-sign',
  'duplicate-san',
  'attribute-not-sequence',
  'attribute-values-not-set',
  'attribute-without-oid',
] as const;
const SPKIS = ['own', 'other-key', 'extra-inside'] as const;

interface Recipe {
  readonly key: KeyName;
  readonly algorithm: AlgorithmName;
  readonly version: readonly number[];
  readonly subject: (typeof SUBJECTS)[number];
  readonly spki: (typeof SPKIS)[number];
  readonly attributes: (typeof ATTRIBUTES)[number];
  readonly noise: readonly HeaderForm[];
  readonly mutation: Mutation;
}

type Mutation =
  | { kind: 'none' }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'append'; bytes: readonly number[] }
  | { kind: 'length'; at: number; delta: number };

const formArb: fc.Arbitrary<HeaderForm> = fc.oneof(
  { weight: 24, arbitrary: fc.constant<HeaderForm>('minimal') },
  { weight: 1, arbitrary: fc.constantFrom<HeaderForm>('long-length', 'indefinite', 'long-tag') },
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('length' as const),
      at: fc.nat(),
      delta: fc.integer({ min: -3, max: 3 }),
    }),
  },
);

const recipeArb: fc.Arbitrary<Recipe> = fc
  .record({
    key: fc.constantFrom<KeyName>('p256', 'ed25519', 'rsa2048'),
    algorithm: fc.oneof(
      { weight: 6, arbitrary: fc.constant<'matching'>('matching') },
      { weight: 4, arbitrary: fc.constantFrom(...(Object.keys(ALGORITHMS) as AlgorithmName[])) },
    ) as fc.Arbitrary<AlgorithmName | 'matching'>,
    version: fc.oneof(
      { weight: 8, arbitrary: fc.constant([2, 1, 0]) },
      { weight: 1, arbitrary: fc.constantFrom([2, 1, 1], [2, 2, 0, 0], [2, 0]) },
    ),
    subject: fc.constantFrom(...SUBJECTS),
    spki: fc.oneof(
      { weight: 8, arbitrary: fc.constant('own' as const) },
      { weight: 1, arbitrary: fc.constantFrom(...SPKIS) },
    ),
    attributes: fc.constantFrom(...ATTRIBUTES),
    noise: fc.array(formArb, { maxLength: 40 }),
    mutation: mutationArb,
  })
  .map((recipe) => ({
    ...recipe,
    algorithm:
      recipe.algorithm === 'matching'
        ? ({ p256: 'ecdsaSha256', ed25519: 'ed25519', rsa2048: 'rsaSha256' } as const)[recipe.key]
        : recipe.algorithm,
  }));

function extensionRequest(extensions: readonly x509.Extension[], noise: EncodingNoise): Buffer {
  const list = tlv(
    0x30,
    extensions.map((e) => new Uint8Array(e.rawData)),
    noise,
  );
  return tlv(0x30, [oid('1.2.840.113549.1.9.14'), tlv(0x31, list, noise)], noise);
}

function attributesOf(kind: Recipe['attributes'], noise: EncodingNoise): Buffer | undefined {
  const uri = (value: string) => ({ type: 'url' as const, value });
  const san = (names: x509.JsonGeneralName[]) => new x509.SubjectAlternativeNameExtension(names, false);
  const wrap = (...attributes: Buffer[]) => tlv(0xa0, attributes, noise);
  switch (kind) {
    case 'empty':
      return wrap();
    case 'absent':
      return undefined;
    case 'set-tag':
      return tlv(0x31, [], noise);
    case 'san-uri':
      return wrap(extensionRequest([san([uri('spiffe://example.org/ns/a/sa/b')])], noise));
    case 'san-two-uris':
      return wrap(extensionRequest([san([uri('spiffe://example.org/a'), uri('spiffe://evil.org/b')])], noise));
    case 'san-dns-only':
      return wrap(extensionRequest([san([{ type: 'dns', value: 'example.org' }])], noise));
    case 'critical-unknown':
      return wrap(extensionRequest([new x509.Extension('1.2.3.4.5', true, new Uint8Array([5, 0]))], noise));
    case 'ca-true':
      return wrap(extensionRequest([new x509.BasicConstraintsExtension(true, undefined, true)], noise));
    case 'key-cert-sign':
      return wrap(extensionRequest([new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)], noise));
    case 'duplicate-san':
      return wrap(extensionRequest([san([uri('spiffe://example.org/a')]), san([uri('spiffe://other.org/b')])], noise));
    case 'attribute-not-sequence':
      return wrap(tlv(0x02, Buffer.from([1]), noise));
    case 'attribute-values-not-set':
      return wrap(tlv(0x30, [oid('1.2.840.113549.1.9.7'), tlv(0x0c, Buffer.from('pw'), noise)], noise));
    case 'attribute-without-oid':
      return wrap(tlv(0x30, [tlv(0x02, Buffer.from([1]), noise), tlv(0x31, [], noise)], noise));
  }
}

function subjectOf(kind: Recipe['subject'], noise: EncodingNoise): Buffer {
  const atv = (type: Buffer, value: string) => tlv(0x30, [type, tlv(0x0c, Buffer.from(value), noise)], noise);
  switch (kind) {
    case 'empty':
      return tlv(0x30, [], noise);
    case 'O=meshauth':
      return tlv(0x30, [tlv(0x31, [atv(oid('2.5.4.10'), 'meshauth')], noise)], noise);
    case 'empty-rdn':
      return tlv(0x30, [tlv(0x31, [], noise)], noise);
    case 'attribute-without-oid':
      return tlv(0x30, [tlv(0x31, [atv(tlv(0x02, Buffer.from([3])), 'x')], noise)], noise);
    case 'two-rdns':
      return tlv(
        0x30,
        [tlv(0x31, [atv(oid('2.5.4.10'), 'a')], noise), tlv(0x31, [atv(oid('2.5.4.3'), 'b')], noise)],
        noise,
      );
  }
}

function spkiOf(recipe: Recipe): Buffer {
  const own = keys[recipe.key].spki;
  if (recipe.spki === 'own') return own;
  if (recipe.spki === 'other-key') return keys[recipe.key === 'p256' ? 'ed25519' : 'p256'].spki;
  // An element appended inside the SPKI SEQUENCE (after the BIT STRING).
  const inner = own.subarray(own[1] === 0x82 ? 4 : own[1] === 0x81 ? 3 : 2);
  return tlv(0x30, [inner, NULL]);
}

function build(recipe: Recipe): Buffer {
  const noise = new EncodingNoise(recipe.noise);
  const attributes = attributesOf(recipe.attributes, noise);
  const info = tlv(
    0x30,
    [
      Buffer.from(recipe.version),
      subjectOf(recipe.subject, noise),
      spkiOf(recipe),
      ...(attributes === undefined ? [] : [attributes]),
    ],
    noise,
  );
  const algorithm = ALGORITHMS[recipe.algorithm];
  const signature = sign(digestFor(recipe.key, recipe.algorithm), info, keys[recipe.key].privateKey);
  const der = tlv(0x30, [
    info,
    tlv(0x30, [oid(algorithm.oid), ...(algorithm.params === undefined ? [] : [algorithm.params])], noise),
    tlv(0x03, [Buffer.from([0]), signature], noise),
  ]);
  return mutate(der, recipe.mutation);
}

function mutate(der: Buffer, mutation: Mutation): Buffer {
  const out = Buffer.from(der);
  switch (mutation.kind) {
    case 'none':
      return out;
    case 'flip':
      out[mutation.at % out.length] = (out[mutation.at % out.length] as number) ^ (1 << mutation.bit);
      return out;
    case 'truncate':
      return out.subarray(0, mutation.keep % out.length);
    case 'append':
      return Buffer.concat([out, Buffer.from(mutation.bytes)]);
    case 'length': {
      // A length octet: the byte after a tag-looking byte (0x30, 0x31, 0xa0, 0x03, 0x04, 0x06, 0x02).
      const tags = new Set([0x30, 0x31, 0xa0, 0x03, 0x04, 0x06, 0x02]);
      const starts = [...out.keys()].filter((i) => i + 1 < out.length && tags.has(out[i] as number));
      const at = (starts[mutation.at % Math.max(1, starts.length)] ?? 0) + 1;
      out[at] = ((out[at] as number) + mutation.delta + 256) & 0xff;
      return out;
    }
  }
}

type Outcome = { spki: string; keyType: string } | { refused: string };

/** Header + content length of the first element (definite lengths only), -1 otherwise. */
function outerLength(der: Buffer): number {
  const first = der[1] ?? 0x80;
  if (first < 0x80) return 2 + first;
  const octets = first & 0x7f;
  if (octets === 0 || octets > 4) return -1;
  let length = 0;
  for (let i = 0; i < octets; i++) length = length * 256 + (der[2 + i] ?? 0);
  return 2 + octets + length;
}

/** The reference: @peculiar/x509 parses, the outer element spans all bytes, the key is supported, WebCrypto verifies. */
async function reference(der: Buffer): Promise<Outcome> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
  } catch {
    return { refused: 'parse' };
  }
  if (outerLength(der) !== der.length) return { refused: 'not-the-whole-input' };
  let spki: Buffer;
  let keyType: string;
  try {
    spki = Buffer.from(csr.publicKey.rawData); // parsed lazily: a malformed SPKI throws here
    const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    keyType = keyTypeOf(key);
    if (keyType === 'rsa2048' && key.asymmetricKeyDetails?.publicExponent !== 65537n) return { refused: 'exponent' };
  } catch {
    return { refused: 'key' };
  }
  try {
    if (!(await csr.verify())) return { refused: 'signature' };
  } catch {
    return { refused: 'signature' };
  }
  return { spki: spki.toString('hex'), keyType };
}

async function underTest(der: Buffer): Promise<Outcome & { fast?: boolean }> {
  try {
    const csr = await verifyCsrPem(toPem('CERTIFICATE REQUEST', der));
    // The fast path answers with a lazily parsed publicKey (a getter); the @peculiar path with a plain value.
    const fast = Object.getOwnPropertyDescriptor(csr, 'publicKey')?.get !== undefined;
    return { spki: Buffer.from(csr.spki).toString('hex'), keyType: csr.keyType, fast };
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CSR_INVALID');
    return { refused: (error as MeshauthError).reason ?? 'invalid' };
  }
}

describe('verifyCsrPem: strict-DER fast path vs @peculiar/x509 and OpenSSL', () => {
  const accepted: Buffer[] = [];
  let fastAccepted = 0;
  let refused = 0;

  it(
    'accepts nothing the reference refuses, and agrees on the key when both accept',
    async () => {
      await fc.assert(
        fc.asyncProperty(recipeArb, async (recipe) => {
          const der = build(recipe);
          const [ours, ref] = await Promise.all([underTest(der), reference(der)]);
          if ('refused' in ours) {
            refused += 1;
            return;
          }
          if (ours.fast === true) fastAccepted += 1;
          expect(ref).toEqual({ spki: ours.spki, keyType: ours.keyType });
          // OpenSSL is the second reference for what the fast path accepts (the @peculiar fallback is more
          // lenient than OpenSSL about some BER, e.g. an empty INTEGER version, but that is the reference itself).
          if (ours.fast === true && accepted.length < 8 && !accepted.some((a) => a.equals(der))) accepted.push(der);
        }),
        fuzzParams(RUNS),
      );
      // The generator must reach both outcomes, and the fast path must be what accepts most of the time.
      expect(fastAccepted).toBeGreaterThan(RUNS / 10);
      expect(refused).toBeGreaterThan(RUNS / 10);
    },
    fuzzTimeout(RUNS, 20),
  );

  it('openssl req -verify accepts every request of a sample the fast path accepted', () => {
    expect(accepted.length).toBeGreaterThan(3);
    for (const [index, der] of accepted.entries()) {
      const file = join(dir, `accepted-${index}.der`);
      writeFileSync(file, der);
      const result = spawnSync('openssl', ['req', '-inform', 'DER', '-in', file, '-verify', '-noout'], {
        encoding: 'utf8',
      });
      if (result.error !== undefined) throw new Error(`openssl is required for this test: ${result.error.message}`);
      expect({ index, status: result.status, err: result.status === 0 ? '' : result.stderr }).toEqual({
        index,
        status: 0,
        err: '',
      });
    }
  });
});
