// verifyCsrPem refuses a request whose SubjectPublicKeyInfo is not the DER of its key (reason `key_encoding`): the CA
// copies those bytes into the certificate it signs. Found in review: OpenSSL's decoder read an RSA key with bytes after
// the RSAPublicKey, a BER length, padded INTEGERs or rsaEncryption parameters other than NULL, and an Ed25519 key
// whose BIT STRING had unused bits, and the CA signed leaves carrying those bytes (an attacker-chosen blob in a
// CA-signed certificate; strict parsers refuse such SVIDs). A compressed P-256 point, which OpenSSL writes back
// compressed, is refused too: the agent never sends one and Go's parser refuses it in a certificate.
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MeshauthError } from '../../../src/errors/index.js';
import { toPem, verifyCsrPem } from '../../../src/pki/index.js';
import { rsaSpkiDerOf } from '../../../src/pki/key-der.js';
import { oid, tlv } from '../../helpers/der-writer.js';

const hex = (s: string) => Buffer.from(s, 'hex');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaJwk = rsa.publicKey.export({ format: 'jwk' }) as { n: string; e: string };
/** The modulus as a DER INTEGER's content (a leading 00: its top bit is set). */
const modulus = Buffer.concat([hex('00'), Buffer.from(rsaJwk.n, 'base64url')]);
const exponent = Buffer.from(rsaJwk.e, 'base64url');
const RSA_ALGORITHM = tlv(0x30, [oid('1.2.840.113549.1.1.1'), hex('0500')]);
const rsaPublicKey = (n = modulus, e = exponent) => tlv(0x30, [tlv(0x02, n), tlv(0x02, e)]);
const rsaSpki = (key: Buffer, algorithm = RSA_ALGORITHM) => tlv(0x30, [algorithm, tlv(0x03, [hex('00'), key])]);

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecSpki = ec.publicKey.export({ type: 'spki', format: 'der' });
/** The uncompressed point 04 x y: the last 65 bytes of the SPKI. */
const point = ecSpki.subarray(ecSpki.length - 65);
const EC_ALGORITHM = tlv(0x30, [oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')]);

/** An Ed25519 key whose last key byte has bit 0 clear (or set): a BIT STRING with 1 unused bit reads it as given. */
function ed25519WithLowBit(bit: 0 | 1): { privateKey: KeyObject; raw: Buffer } {
  for (;;) {
    const pair = generateKeyPairSync('ed25519');
    const raw = Buffer.from((pair.publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url');
    if (((raw[31] as number) & 1) === bit) return { privateKey: pair.privateKey, raw };
  }
}
const edClear = ed25519WithLowBit(0);
const edSet = ed25519WithLowBit(1);
const ed25519Spki = (unusedBits: number, raw: Buffer) =>
  tlv(0x30, [tlv(0x30, [oid('1.3.101.112')]), tlv(0x03, [Buffer.of(unusedBits), raw])]);

const SIGNATURES = {
  rsa: { algorithm: tlv(0x30, [oid('1.2.840.113549.1.1.11'), hex('0500')]), digest: 'sha256' },
  p256: { algorithm: tlv(0x30, [oid('1.2.840.10045.4.3.2')]), digest: 'sha256' },
  ed25519: { algorithm: tlv(0x30, [oid('1.3.101.112')]), digest: null },
} as const;

/**
 * A request carrying `spki`, correctly self-signed by `privateKey`. `general`: its outer length written in one octet
 * more than needed, which is BER: the strict-DER path declines it and @peculiar/x509 reads it (the general path).
 */
function csr(spki: Buffer, privateKey: KeyObject, kind: keyof typeof SIGNATURES, general = false): string {
  const info = tlv(0x30, [hex('020100'), tlv(0x30, []), spki, hex('a000')]);
  const { algorithm, digest } = SIGNATURES[kind];
  const body = Buffer.concat([info, algorithm, tlv(0x03, [Buffer.of(0), sign(digest, info, privateKey)])]);
  const der = general
    ? Buffer.concat([hex('3083'), Buffer.from([0, body.length >> 8, body.length & 0xff]), body])
    : tlv(0x30, body);
  return toPem('CERTIFICATE REQUEST', der);
}

async function outcome(pem: string): Promise<{ reason: string | undefined; spki?: Buffer }> {
  try {
    const verified = await verifyCsrPem(pem);
    return { reason: undefined, spki: Buffer.from(verified.spki) };
  } catch (error) {
    expect((error as MeshauthError).code).toBe('MESHAUTH_ERR_CSR_INVALID');
    return { reason: (error as MeshauthError).reason };
  }
}

describe('verifyCsrPem: the SubjectPublicKeyInfo must be the DER of its key', () => {
  it.each([
    ['ok/RSA-2048, the encoding OpenSSL writes', () => csr(rsaSpki(rsaPublicKey()), rsa.privateKey, 'rsa')],
    ['ok/RSA-2048 on the general path', () => csr(rsaSpki(rsaPublicKey()), rsa.privateKey, 'rsa', true)],
    ['ok/P-256, uncompressed point', () => csr(ecSpki, ec.privateKey, 'p256')],
    ['ok/Ed25519, no unused bits', () => csr(ed25519Spki(0, edClear.raw), edClear.privateKey, 'ed25519')],
  ])('%s: accepted, its SPKI handed on byte for byte', async (_name, make) => {
    const pem = make();
    const { reason, spki } = await outcome(pem);
    expect(reason).toBeUndefined();
    expect(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').includes(spki as Buffer)).toBe(true);
  });

  it.each([
    [
      'fail/RSA: bytes after the RSAPublicKey inside the BIT STRING',
      () => csr(rsaSpki(Buffer.concat([rsaPublicKey(), hex('dead')])), rsa.privateKey, 'rsa'),
    ],
    [
      'fail/RSA: bytes after the RSAPublicKey, on the general path',
      () => csr(rsaSpki(Buffer.concat([rsaPublicKey(), hex('dead')])), rsa.privateKey, 'rsa', true),
    ],
    [
      'fail/RSA: RSAPublicKey length in a 3-octet long form (BER)',
      () => {
        const body = Buffer.concat([tlv(0x02, modulus), tlv(0x02, exponent)]);
        const key = Buffer.concat([hex('308300'), Buffer.from([body.length >> 8, body.length & 0xff]), body]);
        return csr(rsaSpki(key), rsa.privateKey, 'rsa');
      },
    ],
    [
      'fail/RSA: modulus INTEGER padded with 00 00 00',
      () => csr(rsaSpki(rsaPublicKey(Buffer.concat([hex('0000'), modulus]))), rsa.privateKey, 'rsa'),
    ],
    [
      'fail/RSA: exponent INTEGER 00 01 00 01 (still reads as 65537)',
      () => csr(rsaSpki(rsaPublicKey(modulus, hex('00010001'))), rsa.privateKey, 'rsa'),
    ],
    [
      'fail/RSA: rsaEncryption parameters INTEGER 7 (must be NULL)',
      () =>
        csr(rsaSpki(rsaPublicKey(), tlv(0x30, [oid('1.2.840.113549.1.1.1'), hex('020107')])), rsa.privateKey, 'rsa'),
    ],
    [
      'fail/RSA: rsaEncryption parameters absent',
      () => csr(rsaSpki(rsaPublicKey(), tlv(0x30, [oid('1.2.840.113549.1.1.1')])), rsa.privateKey, 'rsa'),
    ],
    [
      'fail/RSA: rsaEncryption parameters an empty SEQUENCE',
      () => csr(rsaSpki(rsaPublicKey(), tlv(0x30, [oid('1.2.840.113549.1.1.1'), hex('3000')])), rsa.privateKey, 'rsa'),
    ],
    [
      'fail/Ed25519: BIT STRING with 1 unused bit, the padding bit clear (the CA re-encoded it)',
      () => csr(ed25519Spki(1, edClear.raw), edClear.privateKey, 'ed25519'),
    ],
    [
      'fail/Ed25519: BIT STRING with 1 unused bit, the padding bit set (OpenSSL masks it: another key)',
      () => csr(ed25519Spki(1, edSet.raw), edSet.privateKey, 'ed25519'),
    ],
    [
      'fail/P-256: compressed point',
      () => {
        const compressed = Buffer.concat([Buffer.of(0x02 | ((point[64] as number) & 1)), point.subarray(1, 33)]);
        return csr(tlv(0x30, [EC_ALGORITHM, tlv(0x03, [hex('00'), compressed])]), ec.privateKey, 'p256');
      },
    ],
  ])('%s → key_encoding', async (_name, make) => {
    expect((await outcome(make())).reason).toBe('key_encoding');
  });
});

describe('rsaSpkiDerOf (the RSA encoding the CA compares a request with)', () => {
  it.each([
    ['2048 bits, e = 65537', 2048, 65537],
    ['2048 bits, e = 3', 2048, 3],
    ['1024 bits, e = 65537', 1024, 65537],
    ['3072 bits, e = 65537', 3072, 65537],
  ])('ok/%s: byte for byte what OpenSSL writes', (_name, modulusLength, publicExponent) => {
    for (let i = 0; i < 4; i++) {
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength, publicExponent });
      expect(rsaSpkiDerOf(publicKey).equals(publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    }
  });
});
