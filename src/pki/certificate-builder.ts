// Builds the three kinds of certificate of SPEC §3: self-signed root, intermediate (pathLen 0, name-constrained to
// the trust domain) and leaf X509-SVID (SPIFFE X509-SVID §4: one critical URI SAN with an empty subject, CA:FALSE,
// critical KU digitalSignature, EKU serverAuth+clientAuth, back-dated NotBefore, 128-bit random serial).
import { randomBytes } from 'node:crypto';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import { KEY_ALGORITHMS, type KeyPair, type KeyType } from './keys.js';
import { uriNameConstraintsExtension } from './name-constraints.js';
import { randomSerialHex } from './serial.js';
import { x509 } from './x509.js';

/** How far NotBefore is set back to tolerate clock skew between CA and peers (SPEC §3: at most one minute). */
export const BACKDATE_MS = 60_000;
export const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;
export const INTERMEDIATE_TTL_MS = 30 * 24 * 3600_000;

export interface Issuer {
  readonly certificate: x509.X509Certificate;
  readonly privateKey: CryptoKey;
  readonly keyType: KeyType;
}

export interface CaCertificateOptions {
  readonly trustDomain: TrustDomain;
  readonly keys: KeyPair;
  readonly now: Date;
  readonly ttlMs?: number;
}

export async function createRootCertificate(options: CaCertificateOptions): Promise<x509.X509Certificate> {
  const { trustDomain, keys, now } = options;
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: caName('meshauth root CA', trustDomain),
    notBefore,
    notAfter: new Date(now.getTime() + (options.ttlMs ?? ROOT_TTL_MS)),
    signingAlgorithm: KEY_ALGORITHMS[keys.type].sign,
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomain.idString }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
}

export interface IntermediateOptions extends CaCertificateOptions {
  readonly issuer: Issuer;
}

export async function createIntermediateCertificate(options: IntermediateOptions): Promise<x509.X509Certificate> {
  const { trustDomain, keys, issuer, now } = options;
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: caName('meshauth intermediate CA', trustDomain),
    issuer: issuer.certificate.subjectName,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: clampToIssuer(new Date(now.getTime() + (options.ttlMs ?? INTERMEDIATE_TTL_MS)), issuer),
    signingAlgorithm: KEY_ALGORITHMS[issuer.keyType].sign,
    publicKey: keys.publicKey,
    signingKey: issuer.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: trustDomain.idString }], false),
      uriNameConstraintsExtension([trustDomain.name]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate, false),
    ],
  });
}

export interface LeafOptions {
  readonly id: SpiffeId;
  /** The subject's public key: a CryptoKey, or the SPKI taken from a verified CSR. */
  readonly publicKey: CryptoKey | x509.PublicKey;
  readonly issuer: Issuer;
  readonly now: Date;
  readonly ttlMs: number;
  /** Extra SANs for servers that standard clients verify by name (the CA's own serving certificate). */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export async function createLeafCertificate(options: LeafOptions): Promise<x509.X509Certificate> {
  const { id, issuer, now } = options;
  const publicKey =
    options.publicKey instanceof x509.PublicKey ? options.publicKey : await x509.PublicKey.create(options.publicKey);
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: id.toString() }];
  for (const dns of options.dnsNames ?? []) names.push({ type: 'dns', value: dns });
  for (const ip of options.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
  const usage = isRsa(publicKey)
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: '',
    issuer: issuer.certificate.subjectName,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: clampToIssuer(new Date(now.getTime() + options.ttlMs), issuer),
    signingAlgorithm: KEY_ALGORITHMS[issuer.keyType].sign,
    publicKey,
    signingKey: issuer.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usage, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      // X509-SVID §3.1: with an empty subject the SAN extension must be critical.
      new x509.SubjectAlternativeNameExtension(names, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate, false),
    ],
  });
}

function caName(label: string, trustDomain: TrustDomain): string {
  // A short random suffix keeps subjects distinct across rotations, so chain building never confuses two roots.
  return `CN=${label} ${randomBytes(4).toString('hex')}, O=meshauth, OU=${trustDomain.name}`;
}

function clampToIssuer(notAfter: Date, issuer: Issuer): Date {
  return notAfter > issuer.certificate.notAfter ? issuer.certificate.notAfter : notAfter;
}

function isRsa(publicKey: x509.PublicKey): boolean {
  return publicKey.algorithm.name.startsWith('RSA');
}
