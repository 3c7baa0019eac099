// Leaves signed by the test CA's intermediate with one hostile detail each, checked on both validation paths:
// validateX509SvidDer (leaf facts read from DER, leaf-der.ts) and validateX509Svid (@peculiar/x509). Each case names
// a shape where the two once differed, or where either accepted what OpenSSL refuses.
import {
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  sign,
} from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { MeshauthError } from '../../../src/errors/index.js';
import {
  certificateSpkiDer,
  checkSvidLeaf,
  checkSvidLeafDer,
  parseCertificate,
  validateX509Svid,
  validateX509SvidDer,
  x509,
} from '../../../src/pki/index.js';
import { plainLeafFacts } from '../../../src/pki/leaf-der.js';
import { oid, tlv } from '../../helpers/der-writer.js';
import { TestCa } from '../../helpers/test-ca.js';

const ID = 'spiffe://example.org/ns/a/sa/b';
const TRUE = Buffer.from([1, 1, 0xff]);
const ECDSA_SHA256 = () => tlv(0x30, [oid('1.2.840.10045.4.3.2')]);

let ca: TestCa;
let signingKey: KeyObject;
let issuerName: Buffer;
let keyId: Buffer;
let spki: Buffer;

beforeAll(async () => {
  ca = await TestCa.create('example.org');
  signingKey = createPrivateKey(ca.intermediateKeyPem);
  issuerName = Buffer.from(ca.intermediate.subjectName.toArrayBuffer());
  keyId = Buffer.from(ca.intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? '00', 'hex');
  spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
});

const ext = (id: string, critical: boolean, value: Buffer) =>
  tlv(0x30, [oid(id), ...(critical ? [TRUE] : []), tlv(0x04, value)]);
const uriSan = (uri: string) => tlv(0x30, [tlv(0x86, Buffer.from(uri, 'latin1'))]);

interface Shape {
  serial?: Buffer;
  /** The signature BIT STRING with a non-minimal length (the certificate no longer splits as DER). */
  berSignatureLength?: boolean;
  /** The Validity SEQUENCE's two times, as written (tag and text). */
  validity?: (utc: (offsetMs: number) => string) => [Buffer, Buffer];
  innerAlgorithm?: Buffer;
  key?: Buffer;
  extensions?: (standard: Record<string, Buffer>) => Buffer[];
}

/** A leaf of meshauth's plain shape (empty subject, the six extensions) with `shape` applied, signed. */
function leaf(shape: Shape = {}): Uint8Array {
  const utc = (offset: number) =>
    new Date(Date.now() + offset)
      .toISOString()
      .replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d+Z$/, '$1$2$3$4$5$6Z');
  const standard = {
    basicConstraints: ext('2.5.29.19', true, tlv(0x30, [])),
    keyUsage: ext('2.5.29.15', true, tlv(0x03, Buffer.from([7, 0x80]))),
    extKeyUsage: ext('2.5.29.37', false, tlv(0x30, [oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')])),
    san: ext('2.5.29.17', true, uriSan(ID)),
    ski: ext('2.5.29.14', false, tlv(0x04, Buffer.alloc(20, 7))),
    aki: ext('2.5.29.35', false, tlv(0x30, [tlv(0x80, keyId)])),
  };
  const extensions = shape.extensions?.(standard) ?? Object.values(standard);
  const tbs = tlv(0x30, [
    Buffer.from([0xa0, 3, 2, 1, 2]),
    shape.serial ?? tlv(0x02, Buffer.from('0102030405060708', 'hex')),
    shape.innerAlgorithm ?? ECDSA_SHA256(),
    issuerName,
    tlv(0x30, shape.validity?.(utc) ?? [tlv(0x17, Buffer.from(utc(-60_000))), tlv(0x17, Buffer.from(utc(3_600_000)))]),
    tlv(0x30, []),
    shape.key ?? spki,
    tlv(0xa3, [tlv(0x30, extensions)]),
  ]);
  const signature = Buffer.concat([Buffer.from([0]), sign('sha256', tbs, signingKey)]);
  // A long-form length where the short form fits: BER, which OpenSSL reads, outside the signed part.
  const signatureBits =
    shape.berSignatureLength === true
      ? Buffer.concat([Buffer.from([0x03, 0x81, signature.length]), signature])
      : tlv(0x03, signature);
  return new Uint8Array(tlv(0x30, [tbs, ECDSA_SHA256(), signatureBits]));
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

function bothPaths(der: Uint8Array): { der: Outcome; parsed: Outcome; read: boolean } {
  const now = new Date();
  // The leaf rules alone (what a TLS listener runs after OpenSSL verified the chain) agree on both paths too.
  const intermediateDer = new Uint8Array(ca.intermediate.rawData);
  expect(outcome(() => checkSvidLeafDer(der, intermediateDer, ca.bundle.trustDomain, now).id)).toEqual(
    outcome(() => checkSvidLeaf(parseCertificate(der), ca.bundle.trustDomain, now)),
  );
  return {
    der: outcome(() => validateX509SvidDer(der, [ca.intermediate], ca.bundle, now)),
    parsed: outcome(() => validateX509Svid([parseCertificate(der), ca.intermediate], ca.bundle, now)),
    read: plainLeafFacts(der, [ca.intermediate]) !== undefined,
  };
}

const malformed = (reason: string) => ({ code: 'MESHAUTH_ERR_SVID_MALFORMED', reason });

describe('leaf shapes on the DER and the parsed path', () => {
  it('ok/the plain shape is read from DER and accepted by both paths', () => {
    expect(bothPaths(leaf())).toEqual({ der: { id: ID }, parsed: { id: ID }, read: true });
  });

  it.each<[string, () => Shape, Outcome]>([
    [
      'fail/a second subjectAltName (another trust domain) is refused, not read as the first',
      () => ({
        extensions: (s) => [...Object.values(s), ext('2.5.29.17', true, uriSan('spiffe://evil.org/x'))],
      }),
      malformed('duplicate_extension'),
    ],
    [
      'fail/a second keyUsage (keyCertSign) is refused',
      () => ({
        extensions: (s) => [...Object.values(s), ext('2.5.29.15', true, tlv(0x03, Buffer.from([2, 0x84])))],
      }),
      malformed('duplicate_extension'),
    ],
    [
      'fail/a second basicConstraints (CA:TRUE) is refused',
      () => ({ extensions: (s) => [...Object.values(s), ext('2.5.29.19', true, tlv(0x30, [TRUE]))] }),
      malformed('duplicate_extension'),
    ],
    [
      'fail/an unknown critical extension is refused (RFC 5280 §4.2)',
      () => ({ extensions: (s) => [...Object.values(s), ext('1.2.3.4.5', true, Buffer.from([5, 0]))] }),
      malformed('unknown_critical_extension'),
    ],
    [
      'fail/a constructed URI name is malformed, not an internal error',
      () => ({
        extensions: (s) => [
          ...Object.values({ ...s, san: ext('2.5.29.17', true, tlv(0x30, [tlv(0xa6, [tlv(0x16, Buffer.from(ID))])])) }),
        ],
      }),
      malformed('malformed'),
    ],
    [
      'fail/a critical subjectKeyIdentifier is refused (OpenSSL does not handle it critical)',
      () => ({
        extensions: (s) => [
          ...Object.values(s).filter((e) => e !== s.ski),
          ext('2.5.29.14', true, tlv(0x04, Buffer.alloc(20, 7))),
        ],
      }),
      malformed('unknown_critical_extension'),
    ],
    [
      'fail/a critical authorityKeyIdentifier is refused (OpenSSL does not handle it critical)',
      () => ({
        extensions: (s) => [
          ...Object.values(s).filter((e) => e !== s.aki),
          ext('2.5.29.35', true, tlv(0x30, [tlv(0x80, keyId)])),
        ],
      }),
      malformed('unknown_critical_extension'),
    ],
    // @peculiar/x509 read these notBefore times as 1899 (UTCTime) or days early (GeneralizedTime): a leaf not valid
    // for another day was accepted; OpenSSL refuses each form.
    [
      'fail/a UTCTime notBefore with an offset (a day ahead) is malformed, not read as 1899',
      () => ({
        validity: (utc) => [
          tlv(0x17, Buffer.from(utc(86_400_000).replace('Z', '+0000'))),
          tlv(0x17, Buffer.from(utc(2 * 86_400_000))),
        ],
      }),
      malformed('malformed'),
    ],
    [
      'fail/the same in a certificate with a BER length (which OpenSSL reads, printing the time as leniently): malformed',
      () => ({
        berSignatureLength: true,
        validity: (utc) => [
          tlv(0x17, Buffer.from(utc(86_400_000).replace('Z', '+0000'))),
          tlv(0x17, Buffer.from(utc(2 * 86_400_000))),
        ],
      }),
      malformed('malformed'),
    ],
    [
      'fail/a UTCTime notBefore without seconds is malformed',
      () => ({
        validity: (utc) => [
          tlv(0x17, Buffer.from(utc(86_400_000).replace(/\d\dZ$/, 'Z'))),
          tlv(0x17, Buffer.from(utc(2 * 86_400_000))),
        ],
      }),
      malformed('malformed'),
    ],
    [
      'fail/a GeneralizedTime notBefore with an offset (a day ahead) is malformed, not read days early',
      () => ({
        validity: (utc) => [
          tlv(0x18, Buffer.from(`20${utc(86_400_000).replace('Z', '+0000')}`)),
          tlv(0x17, Buffer.from(utc(2 * 86_400_000))),
        ],
      }),
      malformed('malformed'),
    ],
    [
      'fail/a GeneralizedTime notAfter with fractional seconds is malformed',
      () => ({
        validity: (utc) => [
          tlv(0x17, Buffer.from(utc(-60_000))),
          tlv(0x18, Buffer.from(`20${utc(3_600_000).replace('Z', '.5Z')}`)),
        ],
      }),
      malformed('malformed'),
    ],
    [
      'fail/an empty serial INTEGER (OpenSSL cannot read it) is malformed, not an internal error',
      () => ({ serial: Buffer.from([2, 0]) }),
      malformed('malformed'),
    ],
  ])('%s', (_name, shape, expected) => {
    const result = bothPaths(leaf(shape()));
    expect(result.der).toEqual(expected);
    expect(result.parsed).toEqual(expected);
    // None of these is the plain shape: the DER reader leaves them to the general path.
    expect(result.read).toBe(false);
  });

  it('fail/a leaf whose public key OpenSSL cannot decode is malformed on both paths (the DER reader leaves keys to OpenSSL)', () => {
    const broken = Buffer.from(spki);
    broken[broken.length - 65] = 0x05; // the point's 04 prefix → 05: no point encoding
    const result = bothPaths(leaf({ key: broken }));
    expect(result.der).toEqual(malformed('malformed'));
    expect(result.parsed).toEqual(malformed('malformed'));
  });

  it.each<[string, () => Shape]>([
    [
      'ok/pathLenConstraint without cA goes to the general path',
      () => ({
        extensions: (s) =>
          Object.values({ ...s, basicConstraints: ext('2.5.29.19', true, tlv(0x30, [Buffer.from([2, 1, 0])])) }),
      }),
    ],
    [
      'ok/a non-critical SAN with an empty subject goes to the general path',
      () => ({
        extensions: (s) => Object.values({ ...s, san: ext('2.5.29.17', false, uriSan(ID)) }),
      }),
    ],
    [
      'ok/no authorityKeyIdentifier goes to the general path',
      () => ({
        extensions: (s) => Object.values(s).filter((e) => e !== s.aki),
      }),
    ],
  ])('%s', (_name, shape) => {
    expect(bothPaths(leaf(shape()))).toEqual({ der: { id: ID }, parsed: { id: ID }, read: false });
  });

  it.each<[string, () => Shape]>([
    [
      'fail/an inner signature algorithm that differs from the outer one is not read from DER',
      () => ({
        innerAlgorithm: tlv(0x30, [oid('1.2.840.10045.4.3.3')]),
      }),
    ],
    [
      'fail/an inner signature algorithm that is a bare OID is not read from DER',
      () => ({
        innerAlgorithm: oid('1.2.840.10045.4.3.2'),
      }),
    ],
    [
      'fail/a keyUsage BIT STRING without bits is not read from DER',
      () => ({
        extensions: (s) => Object.values({ ...s, keyUsage: ext('2.5.29.15', true, tlv(0x03, Buffer.from([0]))) }),
      }),
    ],
  ])('%s', (_name, shape) => {
    const result = bothPaths(leaf(shape()));
    expect(result.read).toBe(false);
    expect('id' in result.der).toBe(false);
    expect(result.der).toEqual(result.parsed);
  });
});

describe('certificateSpkiDer', () => {
  it('ok/the SPKI of an issued leaf and of a CA certificate, byte for byte as OpenSSL reads it', async () => {
    const svid = await ca.issue({ id: ID });
    for (const cert of [svid.leaf, ca.intermediate, ca.root]) {
      const der = new Uint8Array(cert.rawData);
      const expected = new NodeX509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
      expect(certificateSpkiDer(der)?.equals(expected)).toBe(true);
    }
  });

  it.each([
    ['fail/empty', Buffer.alloc(0)],
    ['fail/not a SEQUENCE', Buffer.from([0x04, 0x01, 0x00])],
    ['fail/a v1 certificate shape (no [0] version)', tlv(0x30, [tlv(0x30, [Buffer.from([2, 1, 1]), tlv(0x30, [])])])],
  ])('%s → undefined', (_name, der) => {
    expect(certificateSpkiDer(new Uint8Array(der))).toBeUndefined();
  });
});
