// Differential property tests of the X509-SVID leaf rules read from DER (plainLeafFacts / validateX509SvidDer, the
// CA's renewal path and the agent's check of a new SVID) against the @peculiar/x509 path (validateX509Svid on the
// parsed certificate) and, on a sample, `openssl verify` / `openssl x509`.
// Leaves are written from random shapes — version, serial, issuer name, validity encodings, subject, and each
// extension in a normal or a hostile variant (CA:TRUE, keyCertSign, non-critical or oddly encoded keyUsage,
// missing EKU purposes, SANs with extra, non-URI, non-ASCII, invalid or foreign-trust-domain URIs, duplicate or
// unknown critical extensions), with non-minimal / indefinite lengths and long-form tags — and SIGNED by the test
// CA's intermediate, so a signature check never hides a parser difference; some are then mutated after signing.
// Properties: validateX509SvidDer accepts only what validateX509Svid accepts, with the same SPIFFE ID; whenever the
// DER reader answers, the facts it read are those @peculiar/x509 reads and the verdicts (codes, reasons) agree.
import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject, X509Certificate as NodeX509, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import { parseCertificate, toPem, validateX509Svid, validateX509SvidDer, x509 } from '../../../src/pki/index.js';
import { plainLeafFacts } from '../../../src/pki/leaf-der.js';
import { EncodingNoise, type HeaderForm, oid, tlv } from '../../helpers/der-writer.js';
import { TestCa } from '../../helpers/test-ca.js';
import { fuzzParams, fuzzTimeout } from './fuzz-settings.js';

const RUNS = 120;
const HOUR = 3_600_000;
const now = new Date();

let ca: TestCa;
let signingKey: KeyObject;
let issuerName: Buffer;
let keyId: Buffer;
let spkis: Record<'p256' | 'ed25519' | 'rsa2048', Buffer>;
let dir: string;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  signingKey = createPrivateKey(ca.intermediateKeyPem);
  issuerName = Buffer.from(ca.intermediate.subjectName.toArrayBuffer());
  const ski = ca.intermediate.getExtension(x509.SubjectKeyIdentifierExtension);
  keyId = Buffer.from(ski?.keyId ?? '00', 'hex');
  const spki = (pair: { publicKey: KeyObject }) => pair.publicKey.export({ type: 'spki', format: 'der' });
  spkis = {
    p256: spki(generateKeyPairSync('ec', { namedCurve: 'P-256' })),
    ed25519: spki(generateKeyPairSync('ed25519')),
    rsa2048: spki(generateKeyPairSync('rsa', { modulusLength: 2048 })),
  };
  dir = mkdtempSync(join(tmpdir(), 'meshauth-leaf-fuzz-'));
  writeFileSync(join(dir, 'root.pem'), ca.rootPem);
  writeFileSync(join(dir, 'intermediate.pem'), ca.intermediatePem);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const ID = 'spiffe://example.org/ns/a/sa/b';
const TRUE = Buffer.from([1, 1, 0xff]);
const FALSE = Buffer.from([1, 1, 0]);

const BASIC = ['ca-false', 'ca-true', 'ca-false-explicit', 'ca-true-0x01', 'pathlen-only', 'absent', 'not-a-sequence'];
const KEY_USAGE = [
  'digital-signature',
  'not-critical',
  'critical-false-explicit',
  'with-key-cert-sign',
  'with-crl-sign',
  'key-encipherment-only',
  'unused-bits-set',
  'with-decipher-only',
  'empty',
  'absent',
];
const EXT_KEY_USAGE = ['server-client', 'server-only', 'with-any', 'empty', 'absent'];
const SAN = [
  'uri',
  'uri-other-trust-domain',
  'uri-upper-scheme',
  'uri-trust-domain-only',
  'uri-with-query',
  'two-uris',
  'dns-only',
  'dns-and-uri',
  'email-and-uri',
  'ip-and-uri',
  'bad-ip-and-uri',
  'other-name-and-uri',
  'directory-name-and-uri',
  'uri-non-ascii',
  'uri-with-nul',
  'uri-constructed',
  'not-critical',
  'empty',
  'absent',
];
const SKI = ['present', 'absent', 'not-octet-string'];
const AKI = ['key-id', 'absent', 'with-issuer-and-serial'];
const EXTRA = [
  'unknown-non-critical',
  'unknown-critical',
  'second-san-other-domain',
  'second-key-usage-cert-sign',
  'second-basic-constraints-ca',
  'crl-distribution-points-critical',
  'certificate-policies',
];
const TIMES = ['utc', 'generalized', 'expired', 'not-yet-valid', 'month-13', 'utc-without-seconds', 'utc-offset'];

interface Recipe {
  readonly key: keyof typeof spkis;
  readonly version: 'v3' | 'v1-explicit' | 'absent';
  readonly serial: 'positive' | 'empty' | 'negative';
  readonly issuer: 'intermediate' | 'other';
  readonly subject: 'empty' | 'common-name';
  readonly time: string;
  readonly basic: string;
  readonly keyUsage: string;
  readonly extKeyUsage: string;
  readonly san: string;
  readonly ski: string;
  readonly aki: string;
  readonly extras: readonly string[];
  readonly reversed: boolean;
  readonly noise: readonly HeaderForm[];
  readonly mutation: Mutation;
}

type Mutation =
  | { kind: 'none' }
  | { kind: 'flip'; signed: boolean; at: number; bit: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'append'; bytes: readonly number[] };

/** Mostly the plain variant (index 0), sometimes any. */
const mostly = (values: readonly string[], weight = 4) =>
  fc.oneof(
    { weight, arbitrary: fc.constant(values[0] as string) },
    { weight: 1, arbitrary: fc.constantFrom(...values) },
  );

const recipeArb: fc.Arbitrary<Recipe> = fc.record({
  key: fc.constantFrom('p256', 'ed25519', 'rsa2048'),
  version: fc.oneof(
    { weight: 12, arbitrary: fc.constant('v3' as const) },
    { weight: 1, arbitrary: fc.constantFrom('v1-explicit' as const, 'absent' as const) },
  ),
  serial: fc.oneof(
    { weight: 12, arbitrary: fc.constant('positive' as const) },
    { weight: 1, arbitrary: fc.constantFrom('empty' as const, 'negative' as const) },
  ),
  issuer: fc.oneof(
    { weight: 12, arbitrary: fc.constant('intermediate' as const) },
    { weight: 1, arbitrary: fc.constant('other' as const) },
  ),
  subject: fc.oneof(
    { weight: 6, arbitrary: fc.constant('empty' as const) },
    { weight: 1, arbitrary: fc.constant('common-name' as const) },
  ),
  time: mostly(TIMES, 6),
  basic: mostly(BASIC),
  keyUsage: mostly(KEY_USAGE),
  extKeyUsage: mostly(EXT_KEY_USAGE),
  san: mostly(SAN, 2),
  ski: mostly(SKI, 6),
  aki: mostly(AKI, 6),
  extras: fc.oneof(
    { weight: 5, arbitrary: fc.constant([]) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom(...EXTRA), { maxLength: 2 }) },
  ),
  reversed: fc.boolean(),
  noise: fc.array(
    fc.oneof(
      { weight: 40, arbitrary: fc.constant<HeaderForm>('minimal') },
      { weight: 1, arbitrary: fc.constantFrom<HeaderForm>('long-length', 'indefinite', 'long-tag') },
    ),
    { maxLength: 60 },
  ),
  mutation: fc.oneof(
    { weight: 8, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('flip' as const), signed: fc.boolean(), at: fc.nat(), bit: fc.nat(7) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('append' as const),
        bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 3 }),
      }),
    },
  ),
});

function extension(id: string, critical: boolean | Buffer, value: Buffer, noise: EncodingNoise): Buffer {
  const flag = Buffer.isBuffer(critical) ? [critical] : critical ? [TRUE] : [];
  return tlv(0x30, [oid(id), ...flag, tlv(0x04, value, noise)], noise);
}

function basicConstraints(variant: string, noise: EncodingNoise): Buffer[] {
  const value = {
    'ca-false': tlv(0x30, [], noise),
    'ca-true': tlv(0x30, [TRUE], noise),
    'ca-false-explicit': tlv(0x30, [FALSE], noise),
    'ca-true-0x01': tlv(0x30, [Buffer.from([1, 1, 1])], noise),
    'pathlen-only': tlv(0x30, [Buffer.from([2, 1, 0])], noise),
    'not-a-sequence': TRUE,
  }[variant];
  return value === undefined ? [] : [extension('2.5.29.19', true, value, noise)];
}

function keyUsage(variant: string, noise: EncodingNoise): Buffer[] {
  const bits = (...bytes: number[]) => tlv(0x03, Buffer.from(bytes), noise);
  const ku = (critical: boolean | Buffer, value: Buffer) => [extension('2.5.29.15', critical, value, noise)];
  switch (variant) {
    case 'digital-signature':
      return ku(true, bits(7, 0x80));
    case 'not-critical':
      return ku(false, bits(7, 0x80));
    case 'critical-false-explicit':
      return ku(FALSE, bits(7, 0x80));
    case 'with-key-cert-sign':
      return ku(true, bits(2, 0x84));
    case 'with-crl-sign':
      return ku(true, bits(1, 0x82));
    case 'key-encipherment-only':
      return ku(true, bits(5, 0x20));
    case 'unused-bits-set':
      return ku(true, bits(7, 0x84)); // keyCertSign's bit lies in the "unused" bits: read by nobody
    case 'with-decipher-only':
      return ku(true, bits(7, 0x80, 0x80));
    case 'empty':
      return ku(true, bits(0));
    default:
      return [];
  }
}

function extKeyUsage(variant: string, noise: EncodingNoise): Buffer[] {
  const purposes = {
    'server-client': ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'],
    'server-only': ['1.3.6.1.5.5.7.3.1'],
    'with-any': ['2.5.29.37.0', '1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1'],
    empty: [],
  }[variant];
  if (purposes === undefined) return [];
  return [extension('2.5.29.37', false, tlv(0x30, purposes.map(oid), noise), noise)];
}

function sanValue(variant: string, noise: EncodingNoise): Buffer | undefined {
  const uri = (text: string | Buffer) => tlv(0x86, Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'), noise);
  const dns = tlv(0x82, Buffer.from('a.example.org'), noise);
  const names: Record<string, Buffer[]> = {
    uri: [uri(ID)],
    'uri-other-trust-domain': [uri('spiffe://evil.org/ns/a/sa/b')],
    'uri-upper-scheme': [uri('SPIFFE://example.org/ns/a/sa/b')],
    'uri-trust-domain-only': [uri('spiffe://example.org')],
    'uri-with-query': [uri(`${ID}?x=1`)],
    'two-uris': [uri(ID), uri('spiffe://example.org/ns/c/sa/d')],
    'dns-only': [dns],
    'dns-and-uri': [dns, uri(ID)],
    'email-and-uri': [tlv(0x81, Buffer.from('a@example.org'), noise), uri(ID)],
    'ip-and-uri': [tlv(0x87, Buffer.from([127, 0, 0, 1]), noise), uri(ID)],
    'bad-ip-and-uri': [tlv(0x87, Buffer.from([127, 0, 1]), noise), uri(ID)],
    'other-name-and-uri': [
      tlv(0xa0, [oid('1.3.6.1.4.1.311.20.2.3'), tlv(0xa0, [tlv(0x0c, Buffer.from('x'))])], noise),
      uri(ID),
    ],
    'directory-name-and-uri': [tlv(0xa4, [tlv(0x30, [])], noise), uri(ID)],
    'uri-non-ascii': [uri(Buffer.from('spiffe://example.org/ns/\u00e9', 'utf8'))],
    'uri-with-nul': [uri(Buffer.from(`${ID}\u0000.evil.org`, 'latin1'))],
    'uri-constructed': [tlv(0xa6, [tlv(0x16, Buffer.from(ID))], noise)],
    'not-critical': [uri(ID)],
    empty: [],
  };
  const list = names[variant];
  return list === undefined ? undefined : tlv(0x30, list, noise);
}

function san(variant: string, noise: EncodingNoise): Buffer[] {
  const value = sanValue(variant, noise);
  return value === undefined ? [] : [extension('2.5.29.17', variant !== 'not-critical', value, noise)];
}

function extras(kinds: readonly string[], noise: EncodingNoise): Buffer[] {
  return kinds.map((kind) => {
    switch (kind) {
      case 'unknown-non-critical':
        return extension('1.2.3.4.5', false, Buffer.from([5, 0]), noise);
      case 'unknown-critical':
        return extension('1.2.3.4.5', true, Buffer.from([5, 0]), noise);
      case 'second-san-other-domain':
        return extension('2.5.29.17', true, tlv(0x30, [tlv(0x86, Buffer.from('spiffe://evil.org/x'))]), noise);
      case 'second-key-usage-cert-sign':
        return extension('2.5.29.15', true, tlv(0x03, Buffer.from([2, 0x84])), noise);
      case 'second-basic-constraints-ca':
        return extension('2.5.29.19', true, tlv(0x30, [TRUE]), noise);
      case 'crl-distribution-points-critical':
        return extension(
          '2.5.29.31',
          true,
          tlv(0x30, [tlv(0x30, [tlv(0xa0, [tlv(0xa0, [tlv(0x86, Buffer.from('http://127.0.0.1/crl'))])])])]),
          noise,
        );
      default:
        return extension('2.5.29.32', false, tlv(0x30, [tlv(0x30, [oid('2.5.29.32.0')])]), noise);
    }
  });
}

function utc(date: Date): string {
  return date.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d+Z$/, '$1$2$3$4$5$6Z');
}

function validity(variant: string, noise: EncodingNoise): Buffer {
  const time = (text: string, tag = 0x17) => tlv(tag, Buffer.from(text, 'latin1'), noise);
  const at = (offset: number) => new Date(now.getTime() + offset);
  const pair = (a: Buffer, b: Buffer) => tlv(0x30, [a, b], noise);
  switch (variant) {
    case 'generalized':
      return pair(time(`20${utc(at(-HOUR))}`, 0x18), time(`20${utc(at(HOUR))}`, 0x18));
    case 'expired':
      return pair(time(utc(at(-2 * HOUR))), time(utc(at(-HOUR))));
    case 'not-yet-valid':
      return pair(time(utc(at(HOUR))), time(utc(at(2 * HOUR))));
    case 'month-13':
      return pair(time(utc(at(-HOUR))), time(`${utc(at(HOUR)).slice(0, 2)}1301000000Z`));
    case 'utc-without-seconds':
      return pair(time(utc(at(-HOUR)).replace(/\d\dZ$/, 'Z')), time(utc(at(HOUR))));
    case 'utc-offset':
      return pair(time(utc(at(-HOUR)).replace(/Z$/, '+0000')), time(utc(at(HOUR))));
    default:
      return pair(time(utc(at(-HOUR))), time(utc(at(HOUR))));
  }
}

function build(recipe: Recipe): Buffer {
  const noise = new EncodingNoise(recipe.noise);
  const algorithm = tlv(0x30, [oid(ECDSA_SHA256)]);
  const list = [
    ...basicConstraints(recipe.basic, noise),
    ...keyUsage(recipe.keyUsage, noise),
    ...extKeyUsage(recipe.extKeyUsage, noise),
    ...san(recipe.san, noise),
    ...(recipe.ski === 'present' ? [extension('2.5.29.14', false, tlv(0x04, Buffer.alloc(20, 7)), noise)] : []),
    ...(recipe.ski === 'not-octet-string' ? [extension('2.5.29.14', false, tlv(0x02, Buffer.from([1])), noise)] : []),
    ...(recipe.aki === 'key-id' ? [extension('2.5.29.35', false, tlv(0x30, [tlv(0x80, keyId)]), noise)] : []),
    ...(recipe.aki === 'with-issuer-and-serial'
      ? [
          extension(
            '2.5.29.35',
            false,
            tlv(0x30, [tlv(0x80, keyId), tlv(0xa1, [tlv(0xa4, [issuerName])]), tlv(0x82, Buffer.from([1]))]),
            noise,
          ),
        ]
      : []),
    ...extras(recipe.extras, noise),
  ];
  if (recipe.reversed) list.reverse();
  const version = {
    v3: [Buffer.from([0xa0, 3, 2, 1, 2])],
    'v1-explicit': [Buffer.from([0xa0, 3, 2, 1, 0])],
    absent: [],
  }[recipe.version];
  const serial = {
    positive: tlv(0x02, Buffer.from('01a2b3c4d5e6f708', 'hex')),
    empty: Buffer.from([2, 0]),
    negative: Buffer.from([2, 1, 0x85]),
  }[recipe.serial];
  const issuer =
    recipe.issuer === 'intermediate'
      ? issuerName
      : tlv(0x30, [tlv(0x31, [tlv(0x30, [oid('2.5.4.10'), tlv(0x0c, Buffer.from('other'))])])]);
  const subject =
    recipe.subject === 'empty'
      ? tlv(0x30, [], noise)
      : tlv(0x30, [tlv(0x31, [tlv(0x30, [oid('2.5.4.3'), tlv(0x0c, Buffer.from('workload'))])])], noise);
  let tbs = tlv(
    0x30,
    [
      ...version,
      serial,
      algorithm,
      issuer,
      validity(recipe.time, noise),
      subject,
      spkis[recipe.key],
      tlv(0xa3, [tlv(0x30, list, noise)], noise),
    ],
    noise,
  );
  const mutation = recipe.mutation;
  if (mutation.kind === 'flip' && mutation.signed) tbs = flip(tbs, mutation.at, mutation.bit);
  const signature = sign('sha256', tbs, signingKey);
  let der = tlv(0x30, [tbs, algorithm, tlv(0x03, [Buffer.from([0]), signature])]);
  if (mutation.kind === 'flip' && !mutation.signed) der = flip(der, mutation.at, mutation.bit);
  if (mutation.kind === 'truncate') der = der.subarray(0, mutation.keep % der.length);
  if (mutation.kind === 'append') der = Buffer.concat([der, Buffer.from(mutation.bytes)]);
  return der;
}

function flip(der: Buffer, at: number, bit: number): Buffer {
  const out = Buffer.from(der);
  out[at % out.length] = (out[at % out.length] as number) ^ (1 << bit);
  return out;
}

type Outcome = { id: string } | { code: string; reason: string | undefined };

function outcome(run: () => unknown): Outcome {
  try {
    return { id: String(run()) };
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    return { code: (error as MeshauthError).code, reason: (error as MeshauthError).reason };
  }
}

/** What the leaf rules look at, read by @peculiar/x509 (written here, not imported from the code under test). */
function referenceFacts(cert: x509.X509Certificate) {
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const sanExtension = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return {
    uris: sanExtension === null ? [] : sanExtension.names.items.filter((n) => n.type === 'url').map((n) => n.value),
    ca: cert.getExtension(x509.BasicConstraintsExtension)?.ca,
    keyUsage: usage === null ? null : { critical: usage.critical, usages: usage.usages },
    extKeyUsage: eku === null ? null : eku.usages.map(String),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

describe('validateX509SvidDer: leaf facts from DER vs @peculiar/x509 and OpenSSL', () => {
  const accepted: Buffer[] = [];
  let direct = 0;
  let directAccepted = 0;

  it(
    'accepts only what the parsed path accepts, and reads the same facts whenever it reads them',
    () => {
      fc.assert(
        fc.property(recipeArb, (recipe) => {
          const der = build(recipe);
          const issuers = [ca.intermediate];
          const ours = outcome(() => validateX509SvidDer(new Uint8Array(der), issuers, ca.bundle, now));
          const reference = outcome(() =>
            validateX509Svid([parseCertificate(new Uint8Array(der)), ...issuers], ca.bundle, now),
          );
          if ('id' in ours) expect(reference).toEqual(ours);
          if ('id' in reference) {
            // RFC 5280 §4.2 on either path: one instance of each extension, no critical extension nobody processes.
            const extensions = parseCertificate(new Uint8Array(der)).extensions;
            expect(new Set(extensions.map((e) => e.type)).size).toBe(extensions.length);
            expect(extensions.filter((e) => e.critical && e.type.startsWith('1.2.3.'))).toEqual([]);
            expect(extensions.filter((e) => e.critical && e.type === '2.5.29.31')).toEqual([]);
          }
          const facts = plainLeafFacts(new Uint8Array(der), issuers);
          if (facts === undefined) return;
          direct += 1;
          // What the DER reader answers for, OpenSSL and @peculiar/x509 both parse, with the same facts.
          expect(() => new NodeX509(der)).not.toThrow();
          const cert = parseCertificate(new Uint8Array(der));
          expect(facts).toEqual(referenceFacts(cert));
          // RFC 5280 §4.2: one instance of each extension, and no critical extension the reader does not know.
          const oids = cert.extensions.map((e) => e.type);
          expect(new Set(oids).size).toBe(oids.length);
          for (const e of cert.extensions)
            if (e.critical)
              expect(['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.14', '2.5.29.35']).toContain(e.type);
          expect(ours).toEqual(reference);
          if ('id' in ours) {
            directAccepted += 1;
            if (accepted.length < 6 && !accepted.some((a) => a.equals(der))) accepted.push(der);
          }
        }),
        fuzzParams(RUNS),
      );
      // The generator reaches the DER reader, its accepting branch and its refusals.
      expect(direct).toBeGreaterThan(RUNS / 5);
      expect(directAccepted).toBeGreaterThan(RUNS / 20);
      expect(direct - directAccepted).toBeGreaterThan(RUNS / 20);
    },
    fuzzTimeout(RUNS, 10),
  );

  it('openssl verify -x509_strict accepts a sample of what the DER reader accepted, with the same URI SAN', () => {
    expect(accepted.length).toBeGreaterThan(3);
    for (const [index, der] of accepted.entries()) {
      const file = join(dir, `leaf-${index}.pem`);
      writeFileSync(file, toPem('CERTIFICATE', der));
      const openssl = (...args: string[]) => {
        const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
        if (result.error !== undefined) throw new Error(`openssl is required for this test: ${result.error.message}`);
        return result;
      };
      const verify = openssl(
        'verify',
        '-x509_strict',
        '-purpose',
        'sslclient',
        '-CAfile',
        'root.pem',
        '-untrusted',
        'intermediate.pem',
        file,
      );
      expect({ index, status: verify.status, out: verify.status === 0 ? '' : verify.stdout + verify.stderr }).toEqual({
        index,
        status: 0,
        out: '',
      });
      const text = openssl('x509', '-in', file, '-noout', '-ext', 'subjectAltName').stdout;
      expect(text).toContain(`URI:${ID}`);
    }
  });
});
