// Builds the three kinds of certificate the mesh uses: self-signed root, intermediate (pathLen 0, name-constrained to
// the trust domain) and leaf X509-SVID (one critical URI SAN with an empty subject, CA:FALSE,
// critical KU digitalSignature, EKU serverAuth+clientAuth, back-dated NotBefore, 128-bit random serial).
import { createHash, KeyObject, randomBytes, sign } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import { derChildren, derOid, derTlv, derWellFormed, readDer } from './der.js';
import { KEY_ALGORITHMS, type KeyPair, type KeyType } from './keys.js';
import { uriNameConstraintsExtension } from './name-constraints.js';
import { randomSerialHex } from './serial.js';
import { x509 } from './x509.js';

/** How far NotBefore is set back to tolerate clock skew between CA and peers (at most one minute). */
export const BACKDATE_MS = 60_000;
export const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000;
export { SVID_MAX_TTL_MS } from './issuance-options.js';
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
  /** The subject's public key: a CryptoKey, or the SPKI taken from a verified CSR (parsed, or its DER bytes). */
  readonly publicKey: CryptoKey | x509.PublicKey | Uint8Array;
  readonly issuer: Issuer;
  readonly now: Date;
  readonly ttlMs: number;
  /** Extra SANs for servers that standard clients verify by name (the CA's own serving certificate). */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export async function createLeafCertificate(options: LeafOptions): Promise<x509.X509Certificate> {
  return createLeafCertificateWith(options, randomSerialHex());
}

/**
 * A leaf with a random serial, as DER plus what a signer reports (no parse back): the DER templates when they apply
 * (signLeafDer), createLeafCertificate's general path otherwise.
 */
export async function issueLeafDer(options: LeafOptions): Promise<SignedLeafDer> {
  const serialHex = randomSerialHex();
  const signed = signLeafDer(options, serialHex);
  if (signed !== undefined) return signed;
  const leaf = await createLeafCertificateWith(options, serialHex);
  return { der: Buffer.from(leaf.rawData), notAfter: leaf.notAfter, serialNumber: leaf.serialNumber };
}

/**
 * createLeafCertificate with a given serial. P-256 issuers (every meshauth CA) take the fast path: the TBSCertificate
 * is assembled from cached issuer-derived parts and signed with node:crypto's synchronous sign() (the target is ≥ 1,000
 * SVIDs/s). Other issuers go through @peculiar/x509's generator. Both produce the same TBSCertificate bytes (a unit
 * test compares them). Exported for that test only; not part of the pki index.
 */
export async function createLeafCertificateWith(
  options: LeafOptions,
  serialHex: string,
  path: 'auto' | 'generic' = 'auto',
): Promise<x509.X509Certificate> {
  if (path === 'auto' && options.issuer.keyType === 'p256') return signLeafFast(options, serialHex);
  const { issuer, now } = options;
  const publicKey =
    options.publicKey instanceof x509.PublicKey
      ? options.publicKey
      : options.publicKey instanceof Uint8Array
        ? new x509.PublicKey(new Uint8Array(options.publicKey))
        : await x509.PublicKey.create(options.publicKey);
  const usage = isRsa(publicKey)
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  return x509.X509CertificateGenerator.create({
    serialNumber: serialHex,
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
      // With an empty subject the SAN extension must be critical.
      subjectAltNames(options),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.certificate, false),
    ],
  });
}

function subjectAltNames(options: LeafOptions): x509.SubjectAlternativeNameExtension {
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: options.id.toString() }];
  for (const dns of options.dnsNames ?? []) names.push({ type: 'dns', value: dns });
  for (const ip of options.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
  return new x509.SubjectAlternativeNameExtension(names, true);
}

// --- fast path (P-256 issuers) ---

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const RSA_KEY_OIDS = new Set(['1.2.840.113549.1.1.1', '1.2.840.113549.1.1.10']);

/** What depends only on the issuer, computed once per issuer certificate + key. */
interface IssuerParts {
  readonly privateKey: CryptoKey;
  readonly signingKey: KeyObject;
  readonly name: asn1X509.Name;
  readonly authorityKeyId: asn1X509.Extension;
  readonly algorithm: asn1X509.AlgorithmIdentifier;
  readonly algorithmDer: Buffer;
  readonly nameDer: Buffer;
  readonly authorityKeyIdDer: Buffer;
}

const issuerParts = new WeakMap<x509.X509Certificate, IssuerParts>();

const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);
const EMPTY_NAME = Buffer.from([0x30, 0x00]);
/** id-ce-subjectAltName (2.5.29.17) and id-ce-subjectKeyIdentifier (2.5.29.14) as DER OBJECT IDENTIFIERs. */
const SAN_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);
const SKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e]);

/** Leaf extensions that never vary, parsed once. */
const STATIC_EXTENSIONS = {
  basicConstraints: toAsnExtension(new x509.BasicConstraintsExtension(false, undefined, true)),
  keyUsage: toAsnExtension(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)),
  keyUsageRsa: toAsnExtension(
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
  ),
  extKeyUsage: toAsnExtension(
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
  ),
};

const STATIC_DER = {
  basicConstraints: Buffer.from(AsnConvert.serialize(STATIC_EXTENSIONS.basicConstraints)),
  keyUsage: Buffer.from(AsnConvert.serialize(STATIC_EXTENSIONS.keyUsage)),
  keyUsageRsa: Buffer.from(AsnConvert.serialize(STATIC_EXTENSIONS.keyUsageRsa)),
  extKeyUsage: Buffer.from(AsnConvert.serialize(STATIC_EXTENSIONS.extKeyUsage)),
};

function partsOf(issuer: Issuer): IssuerParts {
  const cached = issuerParts.get(issuer.certificate);
  if (cached !== undefined && cached.privateKey === issuer.privateKey) return cached;
  const parts: IssuerParts = {
    privateKey: issuer.privateKey,
    signingKey: KeyObject.from(issuer.privateKey),
    name: AsnConvert.parse(issuer.certificate.subjectName.toArrayBuffer(), asn1X509.Name),
    // Same key identifier as AuthorityKeyIdentifierExtension.create(issuerCertificate): SHA-1 of its public key bits.
    authorityKeyId: toAsnExtension(
      new x509.AuthorityKeyIdentifierExtension(
        Buffer.from(
          keyIdentifier(AsnConvert.parse(issuer.certificate.publicKey.rawData, asn1X509.SubjectPublicKeyInfo)),
        ).toString('hex'),
        false,
      ),
    ),
    algorithm: new asn1X509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    algorithmDer: Buffer.alloc(0),
    nameDer: Buffer.alloc(0),
    authorityKeyIdDer: Buffer.alloc(0),
  };
  // The same parts as DER, serialized once from the objects above so both paths write the same bytes.
  Object.assign(parts, {
    algorithmDer: Buffer.from(AsnConvert.serialize(parts.algorithm)),
    nameDer: Buffer.from(AsnConvert.serialize(parts.name)),
    authorityKeyIdDer: Buffer.from(AsnConvert.serialize(parts.authorityKeyId)),
  });
  issuerParts.set(issuer.certificate, parts);
  return parts;
}

function signLeafFast(options: LeafOptions, serialHex: string): x509.X509Certificate {
  if ((options.dnsNames?.length ?? 0) > 0 || (options.ipAddresses?.length ?? 0) > 0) {
    return signLeafSchema(options, serialHex);
  }
  const signed = signLeafDer(options, serialHex);
  return signed === undefined
    ? signLeafSchema(options, serialHex)
    : new x509.X509Certificate(new Uint8Array(signed.der));
}

/** A signed leaf as DER, plus what a caller needs without parsing it back. */
export interface SignedLeafDer {
  readonly der: Buffer;
  readonly notAfter: Date;
  /** Hex of the serial's DER INTEGER content, as x509.X509Certificate#serialNumber reports it. */
  readonly serialNumber: string;
}

/**
 * The usual leaf (P-256 issuer, URI SAN only) written directly as DER from byte templates: the ASN.1 object model
 * costs about a millisecond per certificate, this a few microseconds. Undefined when the request is not that usual
 * leaf (another issuer key type, DNS or IP SANs, an SPKI that is not plain DER, a date past 2049): the caller then
 * takes the object-model path. A unit test holds both to the same bytes.
 */
export function signLeafDer(options: LeafOptions, serialHex: string): SignedLeafDer | undefined {
  const { issuer, now } = options;
  if (issuer.keyType !== 'p256') return undefined;
  if ((options.dnsNames?.length ?? 0) > 0 || (options.ipAddresses?.length ?? 0) > 0) return undefined;
  const parts = partsOf(issuer);
  const spkiDer = spkiBytes(options.publicKey);
  const spki = splitSpki(spkiDer);
  if (spki === undefined) return undefined;
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const notAfter = clampToIssuer(new Date(now.getTime() + options.ttlMs), issuer);
  const validity = [derTime(notBefore), derTime(notAfter)];
  if (validity[0] === undefined || validity[1] === undefined) return undefined;
  const uri = Buffer.from(options.id.toString(), 'latin1');
  const serial = Buffer.from(positiveIntegerOctets(serialHex));
  const tbs = derTlv(
    0x30,
    VERSION_V3,
    derTlv(0x02, serial),
    parts.algorithmDer,
    parts.nameDer,
    derTlv(0x30, ...(validity as Buffer[])),
    EMPTY_NAME, // The subject may be empty: the identity is the URI SAN
    spkiDer,
    derTlv(
      0xa3,
      derTlv(
        0x30,
        STATIC_DER.basicConstraints,
        RSA_KEY_OIDS.has(spki.algorithmOid) ? STATIC_DER.keyUsageRsa : STATIC_DER.keyUsage,
        STATIC_DER.extKeyUsage,
        derTlv(0x30, SAN_OID, DER_TRUE, derTlv(0x04, derTlv(0x30, derTlv(0x86, uri)))),
        derTlv(0x30, SKI_OID, derTlv(0x04, derTlv(0x04, spki.keyIdentifier))),
        parts.authorityKeyIdDer,
      ),
    ),
  );
  // The KeyObject itself: ECDSA signatures are DER by default, and on Node 24 an options object around the key
  // costs two internal exceptions per signature.
  const signature = sign('sha256', tbs, parts.signingKey);
  const der = derTlv(0x30, tbs, parts.algorithmDer, derTlv(0x03, Buffer.from([0]), signature));
  // The certificate holds whole seconds (derTime): report what it says.
  const written = new Date(Math.floor(notAfter.getTime() / 1000) * 1000);
  return { der, notAfter: written, serialNumber: serial.toString('hex') };
}

/** The pre-template path through @peculiar/asn1-x509 objects (server SANs, unusual keys). */
function signLeafSchema(options: LeafOptions, serialHex: string): x509.X509Certificate {
  const { issuer, now } = options;
  const parts = partsOf(issuer);
  const spki = AsnConvert.parse(new Uint8Array(spkiBytes(options.publicKey)), asn1X509.SubjectPublicKeyInfo);
  const tbs = new asn1X509.TBSCertificate({
    version: asn1X509.Version.v3,
    serialNumber: positiveIntegerOctets(serialHex),
    signature: parts.algorithm,
    issuer: parts.name,
    validity: new asn1X509.Validity({
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: clampToIssuer(new Date(now.getTime() + options.ttlMs), issuer),
    }),
    subjectPublicKeyInfo: spki,
    extensions: new asn1X509.Extensions([
      STATIC_EXTENSIONS.basicConstraints,
      RSA_KEY_OIDS.has(spki.algorithm.algorithm) ? STATIC_EXTENSIONS.keyUsageRsa : STATIC_EXTENSIONS.keyUsage,
      STATIC_EXTENSIONS.extKeyUsage,
      subjectAltNamesFast(options),
      new asn1X509.Extension({
        extnID: asn1X509.id_ce_subjectKeyIdentifier,
        critical: false,
        extnValue: new OctetString(AsnConvert.serialize(new asn1X509.SubjectKeyIdentifier(keyIdentifier(spki)))),
      }),
      parts.authorityKeyId,
    ]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign('sha256', tbsDer, parts.signingKey);
  return new x509.X509Certificate(
    derSequence(tbsDer, Buffer.from(AsnConvert.serialize(parts.algorithm)), derBitString(signature)),
  );
}

/** SPKI DER of a subject key given as SPKI bytes, an x509.PublicKey or a CryptoKey. */
function spkiBytes(publicKey: LeafOptions['publicKey']): Buffer {
  if (publicKey instanceof Uint8Array) return Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength);
  if (publicKey instanceof x509.PublicKey) return Buffer.from(publicKey.rawData);
  return KeyObject.from(publicKey).export({ type: 'spki', format: 'der' });
}

/** SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }, strictly. */
function splitSpki(der: Buffer): { algorithmOid: string; keyIdentifier: Buffer } | undefined {
  const outer = readDer(der, 0);
  if (outer === undefined || outer.tag !== 0x30 || outer.end !== der.length || !derWellFormed(der, outer)) {
    return undefined;
  }
  const [algorithm, bits, extra] = derChildren(der, outer) ?? [];
  if (algorithm?.tag !== 0x30 || bits?.tag !== 0x03 || extra !== undefined) return undefined;
  const oidElement = derChildren(der, algorithm)?.[0];
  const algorithmOid = oidElement === undefined ? undefined : derOid(der, oidElement);
  if (algorithmOid === undefined || bits.end - bits.contentStart < 2 || der[bits.contentStart] !== 0) return undefined;
  // The usual key identifier: SHA-1 of the subjectPublicKey bits (without the unused-bits octet).
  const keyIdentifier = createHash('sha1')
    .update(der.subarray(bits.contentStart + 1, bits.end))
    .digest();
  return { algorithmOid, keyIdentifier };
}

/** DER validity dates are UTCTime through 2049, whole seconds. Later dates go the object-model path. */
function derTime(date: Date): Buffer | undefined {
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 2049) return undefined;
  const two = (n: number) => String(n).padStart(2, '0');
  const text =
    two(year % 100) +
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    `${two(date.getUTCSeconds())}Z`;
  return derTlv(0x17, Buffer.from(text, 'latin1'));
}

/** The usual key identifier: SHA-1 of the subjectPublicKey BIT STRING value (what @peculiar/x509 computes). */
function keyIdentifier(spki: asn1X509.SubjectPublicKeyInfo): Uint8Array {
  return createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest();
}

/** The SAN extension, built directly for the usual URI-only leaf; via @peculiar/x509 when DNS names or IPs are asked. */
function subjectAltNamesFast(options: LeafOptions): asn1X509.Extension {
  if ((options.dnsNames?.length ?? 0) > 0 || (options.ipAddresses?.length ?? 0) > 0) {
    return toAsnExtension(subjectAltNames(options));
  }
  const names = new asn1X509.SubjectAlternativeName([
    new asn1X509.GeneralName({ uniformResourceIdentifier: options.id.toString() }),
  ]);
  return new asn1X509.Extension({
    extnID: asn1X509.id_ce_subjectAltName,
    critical: true,
    extnValue: new OctetString(AsnConvert.serialize(names)),
  });
}

function toAsnExtension(extension: x509.Extension): asn1X509.Extension {
  return AsnConvert.parse(extension.rawData, asn1X509.Extension);
}

/** DER INTEGER content octets of a positive serial (as @peculiar/x509 encodes a hex serial). */
function positiveIntegerOctets(hex: string): ArrayBuffer {
  let bytes = Buffer.from(hex, 'hex');
  let first = 0;
  while (first < bytes.length - 1 && bytes[first] === 0) first++;
  bytes = bytes.subarray(first);
  if ((bytes[0] ?? 0) > 0x7f) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derSequence(...items: Buffer[]): ArrayBuffer {
  const body = Buffer.concat(items);
  const der = Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
}

function derBitString(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x03]), derLength(bytes.length + 1), Buffer.from([0]), bytes]);
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
