// Hand-built root → intermediate → leaf chains of example.org for the tests of the SVID validator's issuer rules:
// unlike TestCa's, the intermediate carries exactly the extensions a test gives it (besides its CA basics), and each
// verdict is the reason both validator entry points (the parsed chain and the DER leaf) give.
import { expect } from 'vitest';
import { MeshauthError } from '../../src/errors/index.js';
import { SpiffeId, TrustDomain } from '../../src/identity/index.js';
import {
  createLeafCertificate,
  generateKeyPair,
  KEY_ALGORITHMS,
  type KeyPair,
  randomSerialHex,
  TrustBundle,
  validateX509Svid,
  validateX509SvidDer,
  x509,
} from '../../src/pki/index.js';

const HOUR = 3_600_000;

/** A CA certificate and its keys. */
export interface IssuerCa {
  readonly cert: x509.X509Certificate;
  readonly keys: KeyPair;
}

/** A root with example.org's trust bundle of it alone. */
export interface TestRoot extends IssuerCa {
  readonly bundle: TrustBundle;
}

/** A self-signed CA certificate named `name` on `keys`, valid for a day from a minute ago. */
function selfSignedCa(name: string, keys: KeyPair, extensions: x509.Extension[]): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * HOUR),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    keys,
    extensions,
  });
}

/** A self-signed root: CA:TRUE pathLen 1, keyCertSign and cRLSign, valid for a day from a minute ago. */
export async function createTestRoot(): Promise<TestRoot> {
  const keys = await generateKeyPair('p256');
  const cert = await selfSignedCa('CN=test root, O=example.org', keys, [
    new x509.BasicConstraintsExtension(true, 1, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ]);
  return { cert, keys, bundle: new TrustBundle(TrustDomain.parse('example.org'), [cert]) };
}

/** An intermediate under `root`: CA:TRUE pathLen 0, keyCertSign and cRLSign, then `extra`, then its key IDs. */
export async function intermediateUnder(root: IssuerCa, extra: readonly x509.Extension[]): Promise<IssuerCa> {
  const keys = await generateKeyPair('p256');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: 'CN=test intermediate, O=example.org',
    issuer: root.cert.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * HOUR),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ...extra,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert, false),
    ],
  });
  return { cert, keys };
}

/** An X509-SVID leaf for `id`, with a key of its own, signed by `issuer`, valid for an hour. */
export async function leafUnder(
  issuer: IssuerCa,
  id = 'spiffe://example.org/ns/a/sa/b',
): Promise<x509.X509Certificate> {
  const keys = await generateKeyPair('p256');
  return createLeafCertificate({
    id: SpiffeId.parse(id),
    publicKey: keys.publicKey,
    issuer: { certificate: issuer.cert, privateKey: issuer.keys.privateKey, keyType: 'p256' },
    now: new Date(),
    ttlMs: HOUR,
  });
}

/** The reason of the MeshauthError `check` throws ('no reason' without one), or 'ok' when it throws nothing. */
export function reasonOf(check: () => unknown): string {
  try {
    check();
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(MeshauthError);
    return (error as MeshauthError).reason ?? 'no reason';
  }
}

/** What validateX509Svid and validateX509SvidDer say of `leaf` sent with `issuers` (reasonOf each). */
export function bothEntryPoints(
  leaf: x509.X509Certificate,
  issuers: readonly x509.X509Certificate[],
  bundle: TrustBundle,
): [string, string] {
  return [
    reasonOf(() => validateX509Svid([leaf, ...issuers], bundle, new Date())),
    reasonOf(() => validateX509SvidDer(new Uint8Array(leaf.rawData), issuers, bundle, new Date())),
  ];
}

/** `ca`'s certificate again (same subject, key and key identifier) signed by `root`: a cross-signed intermediate. */
export async function crossSignedBy(ca: IssuerCa, root: IssuerCa): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: ca.cert.subjectName,
    issuer: root.cert.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 24 * HOUR),
    signingAlgorithm: KEY_ALGORITHMS.p256.sign,
    publicKey: ca.keys.publicKey,
    signingKey: root.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(ca.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.cert, false),
    ],
  });
}

/**
 * A self-signed CA certificate that names itself as `issuer` does (subject and key identifier) on a key of its own:
 * what `issuer` issued names it as issuer, though it signed nothing.
 */
export async function lookalikeOf(issuer: x509.X509Certificate): Promise<x509.X509Certificate> {
  const keyId = issuer.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? '';
  return selfSignedCa(issuer.subjectName.toString(), await generateKeyPair('p256'), [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    new x509.SubjectKeyIdentifierExtension(keyId),
  ]);
}
