// The fast leaf signer (node:crypto sign, cached issuer parts) must produce exactly the TBSCertificate the generic
// @peculiar/x509 generator produces, for every subject key type and SAN shape.
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';
import { createLeafCertificateWith } from '../../../src/pki/certificate-builder.js';
import {
  createIntermediateCertificate,
  createRootCertificate,
  generateKeyPair,
  type Issuer,
  type KeyType,
  randomSerialHex,
  x509,
} from '../../../src/pki/index.js';

let issuer: Issuer;

beforeAll(async () => {
  const trustDomain = TrustDomain.parse('example.org');
  const now = new Date();
  const rootKeys = await generateKeyPair('p256');
  const root = await createRootCertificate({ trustDomain, keys: rootKeys, now });
  const keys = await generateKeyPair('p256');
  const certificate = await createIntermediateCertificate({
    trustDomain,
    keys,
    issuer: { certificate: root, privateKey: rootKeys.privateKey, keyType: 'p256' },
    now,
  });
  issuer = { certificate, privateKey: keys.privateKey, keyType: 'p256' };
});

/** The DER elements of a certificate: [tbsCertificate, signatureAlgorithm, signatureValue]. */
function elements(cert: x509.X509Certificate): Buffer[] {
  const der = Buffer.from(cert.rawData);
  const read = (offset: number): { start: number; end: number; next: number } => {
    let length = der[offset + 1] as number;
    let header = 2;
    if (length & 0x80) {
      const bytes = length & 0x7f;
      length = 0;
      for (let i = 0; i < bytes; i++) length = length * 256 + (der[offset + 2 + i] as number);
      header += bytes;
    }
    return { start: offset, end: offset + header + length, next: offset + header };
  };
  const outer = read(0);
  const parts: Buffer[] = [];
  for (let offset = outer.next; offset < outer.end; ) {
    const element = read(offset);
    parts.push(der.subarray(element.start, element.end));
    offset = element.end;
  }
  return parts;
}

describe('createLeafCertificate fast path', () => {
  const shapes: [string, KeyType, 'crypto-key' | 'spki' | 'der', { dnsNames?: string[]; ipAddresses?: string[] }][] = [
    ['ok/p256 subject, CryptoKey', 'p256', 'crypto-key', {}],
    ['ok/p256 subject, SPKI from a CSR', 'p256', 'spki', {}],
    ['ok/p256 subject, SPKI DER bytes', 'p256', 'der', {}],
    ['ok/ed25519 subject, SPKI DER bytes', 'ed25519', 'der', {}],
    ['ok/ed25519 subject', 'ed25519', 'crypto-key', {}],
    ['ok/rsa2048 subject (keyEncipherment)', 'rsa2048', 'spki', {}],
    [
      'ok/server SANs',
      'p256',
      'crypto-key',
      { dnsNames: ['localhost', 'ca.example.org'], ipAddresses: ['127.0.0.1', '::1'] },
    ],
  ];
  it.each(shapes)('%s: same TBSCertificate as the generic generator', async (_name, keyType, form, sans) => {
    const keys = await generateKeyPair(keyType);
    const publicKey =
      form === 'spki'
        ? await x509.PublicKey.create(keys.publicKey)
        : form === 'der'
          ? new Uint8Array((await x509.PublicKey.create(keys.publicKey)).rawData)
          : keys.publicKey;
    const options = {
      id: SpiffeId.parse('spiffe://example.org/ns/shop/sa/web'),
      publicKey,
      issuer,
      now: new Date('2026-05-01T12:00:00Z'),
      ttlMs: 3_600_000,
      ...sans,
    };
    const serial = randomSerialHex();
    const fast = await createLeafCertificateWith(options, serial, 'auto');
    const generic = await createLeafCertificateWith(options, serial, 'generic');
    const [fastTbs, fastAlg] = elements(fast);
    const [genericTbs, genericAlg] = elements(generic);
    expect(fastTbs?.toString('hex')).toBe(genericTbs?.toString('hex'));
    expect(fastAlg?.toString('hex')).toBe(genericAlg?.toString('hex'));
    const issuerNode = new NodeX509Certificate(Buffer.from(issuer.certificate.rawData));
    expect(new NodeX509Certificate(Buffer.from(fast.rawData)).verify(issuerNode.publicKey)).toBe(true);
    expect(new NodeX509Certificate(Buffer.from(fast.rawData)).checkIssued(issuerNode)).toBe(true);
  });

  it('ok/a new issuer key for the same certificate object is not served from the cache', async () => {
    const other = await generateKeyPair('p256');
    const options = {
      id: SpiffeId.parse('spiffe://example.org/ns/shop/sa/web'),
      publicKey: (await generateKeyPair('p256')).publicKey,
      now: new Date(),
      ttlMs: 60_000,
    };
    await createLeafCertificateWith({ ...options, issuer }, randomSerialHex());
    const signedByOther = await createLeafCertificateWith(
      { ...options, issuer: { ...issuer, privateKey: other.privateKey } },
      randomSerialHex(),
    );
    const issuerNode = new NodeX509Certificate(Buffer.from(issuer.certificate.rawData));
    expect(new NodeX509Certificate(Buffer.from(signedByOther.rawData)).verify(issuerNode.publicKey)).toBe(false);
  });
});
