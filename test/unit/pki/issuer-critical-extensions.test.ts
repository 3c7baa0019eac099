// The leaf's extension-set rules now apply to every issuer, roots included. Their list of
// "processed" extensions is meant to be OpenSSL's (X509_supported_extension) but lacks crlDistributionPoints
// (2.5.29.31) and OCSP no-check (1.3.6.1.5.5.7.48.1.5). OpenSSL 3 (Node 20's, `openssl verify`, a Node TLS
// handshake) accepts a CA with a critical CRL distribution point, so a chain every handshake accepts would now be
// refused by the only chain check of CA renewal and passport x5c.
import { beforeAll, describe, expect, it } from 'vitest';
import { SpiffeId, TrustDomain } from '../../../src/identity/index.js';
import {
  createLeafCertificate,
  generateKeyPair,
  KEY_ALGORITHMS,
  type KeyPair,
  randomSerialHex,
  TrustBundle,
  validateX509Svid,
  x509,
} from '../../../src/pki/index.js';

const td = TrustDomain.parse('example.org');
const HOUR = 3_600_000;
let rootKeys: KeyPair;
let root: x509.X509Certificate;

beforeAll(async () => {
  rootKeys = await generateKeyPair('p256');
  root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: 'CN=review root, O=example.org',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * HOUR),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
});

describe('issuer extension rules: what OpenSSL processes is not unknown', () => {
  it('ok/an intermediate with a critical CRL distribution point (OpenSSL 3 accepts it in a handshake)', async () => {
    const keys = await generateKeyPair('p256');
    const intermediate = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: 'CN=review intermediate, O=example.org',
      issuer: root.subjectName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 24 * HOUR),
      signingAlgorithm: KEY_ALGORITHMS.p256.sign,
      publicKey: keys.publicKey,
      signingKey: rootKeys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.CRLDistributionPointsExtension(['http://pki.example.org/intermediate.crl'], true),
      ],
    });
    const leafKeys = await generateKeyPair('p256');
    const leaf = await createLeafCertificate({
      id: SpiffeId.parse('spiffe://example.org/ns/a/sa/b'),
      publicKey: leafKeys.publicKey,
      issuer: { certificate: intermediate, privateKey: keys.privateKey, keyType: 'p256' },
      now: new Date(),
      ttlMs: HOUR,
    });
    expect(() => validateX509Svid([leaf, intermediate], new TrustBundle(td, [root]), new Date())).not.toThrow();
  });
});
