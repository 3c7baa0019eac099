// PKCS#10 certificate signing requests. The CA takes only the public key from a CSR: it verifies the
// self-signature (proof of possession) and the key type, and ignores every requested name and extension.
// The input must be exactly one PEM block (whitespace around it allowed) whose DER is exactly one
// CertificationRequest: anything appended is refused, so what was signed is all that was sent.
import {
  generateKeyPair,
  generateKeyPairSync,
  KeyObject,
  sign as signData,
  verify as verifySignature,
} from 'node:crypto';
import { promisify } from 'node:util';
import { MeshauthError } from '../errors/index.js';
import { nodeHas } from '../platform/node-version.js';
import { derBytes, derChildren, derContent, derOid, derTlv, derWellFormed, readDer } from './der.js';
import {
  fixedLayoutKeyType,
  importSpki,
  isFixedLayoutSpki,
  privateKeyEncodings,
  rsaModulusOf,
  rsaSpkiDerOf,
  spkiDerOf,
} from './key-der.js';
import { type KeyPair, type KeyType, keyTypeOf, toPem } from './keys.js';
import { rsaModulusWeakness } from './rsa-weak-key.js';
import { x509 } from './x509.js';

const MAX_CSR_PEM_BYTES = 16 * 1024;
/**
 * ASN.1 elements a request may hold, counted before any parser sees it: the agent's request has about 15, one from
 * openssl with a full subject and 40 DNS names about 110. The bytes limit alone does not bound the work: 16 KiB of
 * tiny elements (a thousand empty attributes, in BER) cost the general path 30–100 ms of the main thread, and the
 * request is checked before its credential.
 */
const MAX_CSR_ELEMENTS = 512;
/** Nesting beyond this is no request (a real one is about 8 deep). */
const MAX_CSR_DEPTH = 32;
const BEGIN_CSR = '-----BEGIN CERTIFICATE REQUEST-----';
const PEM_CSR = /-----BEGIN CERTIFICATE REQUEST-----[\s\S]+?-----END CERTIFICATE REQUEST-----/g;
/** One PEM block and nothing else (whitespace before and after is allowed). */
const WHOLE_PEM_CSR =
  /^\s*-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\s]+)-----END CERTIFICATE REQUEST-----\s*$/;
const CANONICAL_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** RSA public exponent F4: the only one accepted (small exponents such as 3 invite known attacks). */
const RSA_EXPONENT = 65537n;
const generateAsync = promisify(generateKeyPair);

/**
 * The signature algorithm of the requests we write, per key type: its AlgorithmIdentifier as DER and the digest
 * node:crypto takes. The same shapes the CA verifies natively: ecdsa-with-SHA256 and Ed25519 without parameters,
 * sha256WithRSAEncryption with NULL parameters.
 */
const CSR_SIGNATURE: Readonly<Record<KeyType, { algorithm: Buffer; digest: string | null }>> = {
  p256: { algorithm: Buffer.from('300a06082a8648ce3d040302', 'hex'), digest: 'sha256' },
  ed25519: { algorithm: Buffer.from('300506032b6570', 'hex'), digest: null },
  rsa2048: { algorithm: Buffer.from('300d06092a864886f70d01010b0500', 'hex'), digest: 'sha256' },
};
/** version 0, then the subject `O=meshauth` (PrintableString), as before: the CA ignores every requested name. */
const CSR_VERSION_AND_SUBJECT = Buffer.from('02010030133111300f060355040a13086d65736861757468', 'hex');
/** attributes: [0] IMPLICIT SET OF Attribute, empty. */
const CSR_NO_ATTRIBUTES = Buffer.from('a000', 'hex');

/** A key pair made for one SVID, with its CSR: everything the agent sends and keeps. */
export interface KeyWithCsr {
  readonly csrPem: string;
  readonly privateKeyPem: string;
  readonly publicKey: KeyObject;
  /** The public key as the CSR carries it (SPKI DER): what the CA's certificate must carry too. */
  readonly spkiDer: Buffer;
}

/**
 * Whether a key from generateKeyPairSync may be exported as JWK (key-der.ts does, for every new key). On Node 20 the
 * synchronous generation job is freed by the garbage collector, and a collection that frees it while the key is being
 * exported deadlocks the process: the export holds the key's lock, the job's destructor waits for it (seen as a
 * frozen agent; reproduced in a loop of generate-and-export within seconds). Node 24 does not. A job on libuv's pool
 * is freed right after its callback, so older lines make every key there.
 */
const SYNC_KEYGEN_SAFE = nodeHas([[24, 0]]);

/**
 * A new key of the type and its CSR, in node:crypto alone, the request written directly as DER (the agent's
 * per-SVID cost; the WebCrypto and ASN.1-object path cost about 1 ms of CPU more). P-256 and Ed25519 keys are made
 * in this thread where that is safe (~50 µs, less than the hop to libuv's pool); RSA keys, which take far longer,
 * always on the pool.
 */
export async function newKeyWithCsr(type: KeyType): Promise<KeyWithCsr> {
  const { privateKey, publicKey } = await newKeyPair(type);
  const { spkiDer, pkcs8Pem } = privateKeyEncodings(privateKey);
  return { csrPem: csrPemOf(type, privateKey, spkiDer), privateKeyPem: pkcs8Pem, publicKey, spkiDer };
}

interface KeyPairObjects {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** In this thread where that is safe (P-256 and Ed25519 on Node 24), on libuv's pool otherwise. */
function newKeyPair(type: KeyType): KeyPairObjects | Promise<KeyPairObjects> {
  if (type === 'rsa2048') return generateAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  if (type === 'p256') {
    return SYNC_KEYGEN_SAFE
      ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : generateAsync('ec', { namedCurve: 'prime256v1' });
  }
  return SYNC_KEYGEN_SAFE ? generateKeyPairSync('ed25519') : generateAsync('ed25519');
}

/** A PKCS#10 request for the key pair, signed with its private key, written directly as DER. */
function csrPemOf(type: KeyType, privateKey: KeyObject, spki: Uint8Array): string {
  const info = derTlv(0x30, CSR_VERSION_AND_SUBJECT, spki, CSR_NO_ATTRIBUTES);
  const { algorithm, digest } = CSR_SIGNATURE[type];
  const signature = signData(digest, info, privateKey);
  return toPem('CERTIFICATE REQUEST', derTlv(0x30, info, algorithm, derTlv(0x03, Buffer.of(0), signature)));
}

export async function createCsrPem(keys: KeyPair): Promise<string> {
  return csrPemOf(keys.type, KeyObject.from(keys.privateKey), spkiDerOf(KeyObject.from(keys.publicKey)));
}

export interface VerifiedCsr {
  readonly publicKey: x509.PublicKey;
  /** The CSR's SubjectPublicKeyInfo, DER (what the CA copies into the certificate). */
  readonly spki: Uint8Array;
  readonly keyType: KeyType;
}

/**
 * The signature algorithms the CA verifies natively, with the key type each needs and the digest node:crypto
 * takes (null: Ed25519 hashes internally). Parameters must be absent (ECDSA, Ed25519)
 * or NULL (RSA). Any other algorithm goes through @peculiar/x509 as before.
 */
const NATIVE_SIGNATURES: Readonly<Record<string, { keyType: KeyType; digest: string | null; nullParams: boolean }>> = {
  '1.2.840.10045.4.3.2': { keyType: 'p256', digest: 'sha256', nullParams: false },
  '1.2.840.10045.4.3.3': { keyType: 'p256', digest: 'sha384', nullParams: false },
  '1.2.840.10045.4.3.4': { keyType: 'p256', digest: 'sha512', nullParams: false },
  '1.3.101.112': { keyType: 'ed25519', digest: null, nullParams: false },
  '1.2.840.113549.1.1.11': { keyType: 'rsa2048', digest: 'sha256', nullParams: true },
  '1.2.840.113549.1.1.12': { keyType: 'rsa2048', digest: 'sha384', nullParams: true },
  '1.2.840.113549.1.1.13': { keyType: 'rsa2048', digest: 'sha512', nullParams: true },
};

/** The parts of a PKCS#10 request in their plainest strict-DER shape. */
interface CsrParts {
  readonly info: Buffer;
  readonly spki: Buffer;
  readonly signatureOid: string;
  readonly signatureParams: Buffer | undefined;
  readonly signature: Buffer;
}

export async function verifyCsrPem(pem: string): Promise<VerifiedCsr> {
  if (Buffer.byteLength(pem) > MAX_CSR_PEM_BYTES) invalid('CSR is larger than 16 KiB', 'too_large');
  // Each BEGIN line without its END costs the block search a scan to the end of the input: hundreds of them, a
  // quadratic few milliseconds. Counting the BEGIN lines first is linear, and more than one is refused anyway.
  const begins = pem.split(BEGIN_CSR).length - 1;
  if (begins > 1) invalid(`expected exactly one PEM CERTIFICATE REQUEST block, found ${begins}`, 'pem');
  const blocks = pem.match(PEM_CSR) ?? [];
  if (blocks.length !== 1) invalid(`expected exactly one PEM CERTIFICATE REQUEST block, found ${blocks.length}`, 'pem');
  const whole = WHOLE_PEM_CSR.exec(pem);
  if (whole === null) invalid('CSR PEM has data before or after the CERTIFICATE REQUEST block', 'trailing_data');
  const base64 = (whole[1] as string).replace(/\s+/g, '');
  // Buffer's decoder stops at the first '=' and skips what follows: base64 after the padding would be accepted
  // unread (PEM allows padding only at the end).
  if (!CANONICAL_BASE64.test(base64) || base64.length % 4 !== 0) invalid('CSR PEM body is not base64', 'pem');
  const der = Buffer.from(base64, 'base64');
  const elements = countElements(der);
  if (elements === undefined) invalid('CSR cannot be parsed', 'malformed');
  if (elements > MAX_CSR_ELEMENTS) {
    invalid(`CSR has more than ${MAX_CSR_ELEMENTS} ASN.1 elements or is nested too deep`, 'too_large');
  }
  // The usual request (strict DER, a common signature algorithm) is split and verified natively: about a
  // millisecond less of JavaScript ASN.1 per SVID. Anything else takes the @peculiar/x509 path, which names the
  // problem exactly as before.
  const parts = splitCsr(der);
  const native = parts === undefined ? undefined : NATIVE_SIGNATURES[parts.signatureOid];
  if (parts === undefined || native === undefined || !paramsMatch(parts, native.nullParams)) return verifyCsrDer(der);
  const key = publicKeyOf(parts.spki);
  if (key.keyType !== native.keyType) return verifyCsrDer(der);
  let signatureValid = false;
  try {
    // The KeyObject itself, not an options object around it: ECDSA signatures are DER by default, and on Node 24
    // every argument that is not a KeyObject costs two internal exceptions before the key is found.
    signatureValid = verifySignature(native.digest, parts.info, key.key, parts.signature);
  } catch (cause) {
    invalid('CSR signature cannot be verified', 'signature', cause);
  }
  if (!signatureValid) invalid('CSR signature is invalid', 'signature');
  return lazyVerifiedCsr(parts.spki, key.keyType);
}

/** The general path: @peculiar/x509 parses the request and WebCrypto verifies it. */
async function verifyCsrDer(der: Buffer): Promise<VerifiedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  let publicKey: x509.PublicKey;
  try {
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
    // The key is parsed on first access: a malformed SubjectPublicKeyInfo throws here, not at construction.
    publicKey = csr.publicKey;
  } catch (cause) {
    invalid('CSR cannot be parsed', 'malformed', cause);
  }
  // The parser stops after the outer SEQUENCE: bytes after it would be unsigned passengers.
  if (derElementLength(der) !== der.length)
    invalid('CSR DER has bytes after the CertificationRequest', 'trailing_data');
  refuseWhatOpensslRefuses(der);
  const { keyType } = publicKeyOf(Buffer.from(publicKey.rawData));
  // A collision-prone digest proves little: SHA-1 (and anything weaker, which WebCrypto cannot verify) is refused.
  if ((csr.signatureAlgorithm as { hash?: { name?: string } }).hash?.name === 'SHA-1') {
    invalid('CSR is signed with SHA-1', 'weak_signature');
  }
  let signatureValid = false;
  try {
    signatureValid = await csr.verify();
  } catch (cause) {
    invalid('CSR signature cannot be verified', 'signature', cause);
  }
  if (!signatureValid) invalid('CSR signature is invalid', 'signature');
  return { publicKey, spki: new Uint8Array(publicKey.rawData), keyType };
}

/**
 * The key of an SPKI, of a supported type, RSA only with e = 65537, the SPKI being that key's DER encoding. The CA
 * copies these bytes into the certificate it signs (whose signed part must be DER: strict parsers refuse anything
 * else), and OpenSSL's decoder, which reads every SPKI but the two fixed layouts, is lenient: it reads a BER length,
 * an INTEGER with redundant leading zeros, bytes after the RSAPublicKey, rsaEncryption parameters that are not NULL,
 * and an Ed25519 BIT STRING with unused bits, whose padding bit it masks (the signature is then checked against
 * another key than the bytes sent). Such an SPKI differs from the key's own encoding and is refused. So is a compressed P-256 point: Go's and
 * other relying parties' parsers refuse it in a certificate, and the agent never writes one.
 */
function publicKeyOf(spki: Buffer): { key: KeyObject; keyType: KeyType } {
  let keyType: KeyType;
  let key: KeyObject;
  try {
    key = importSpki(spki);
    keyType = fixedLayoutKeyType(spki) ?? keyTypeOf(key);
  } catch (cause) {
    invalid('CSR key type is not supported (P-256, Ed25519 or RSA-2048)', 'key_type', cause);
  }
  if (!isKeyDer(spki, key, keyType)) {
    invalid(
      'CSR public key is not the DER SubjectPublicKeyInfo of its key, or is a compressed P-256 point',
      'key_encoding',
    );
  }
  if (keyType === 'rsa2048' && key.asymmetricKeyDetails?.publicExponent !== RSA_EXPONENT) {
    invalid('CSR RSA key must use the public exponent 65537', 'rsa_exponent');
  }
  if (keyType === 'rsa2048') refuseWeakModulus(key);
  return { key, keyType };
}

/** An RSA key anyone can factor (rsa-weak-key.ts) would let anyone sign as the workload its SVID names. */
function refuseWeakModulus(key: KeyObject): void {
  const weakness = rsaModulusWeakness(rsaModulusOf(key));
  if (weakness === 'small_factor') invalid('CSR RSA modulus has a prime factor below 752', 'rsa_weak_key');
  if (weakness === 'close_primes') invalid('CSR RSA modulus has two primes close enough to factor it', 'rsa_weak_key');
}

/**
 * Whether the SPKI is its key's DER. A P-256 or an Ed25519 key has one layout (for P-256 an uncompressed point), which
 * importSpki read from the key bytes: any other SPKI of those types is refused without re-encoding (OpenSSL would
 * write a compressed point back compressed). An RSA key must be byte for byte its DER written from its modulus and
 * exponent (about 25 µs, only for RSA: the agent's usual P-256 request pays nothing).
 */
function isKeyDer(spki: Buffer, key: KeyObject, keyType: KeyType): boolean {
  if (isFixedLayoutSpki(spki)) return true;
  return keyType === 'rsa2048' && rsaSpkiDerOf(key).equals(spki);
}

/** A VerifiedCsr whose x509.PublicKey is parsed only if someone asks for it (the CA copies the SPKI bytes). */
function lazyVerifiedCsr(spki: Buffer, keyType: KeyType): VerifiedCsr {
  const bytes = new Uint8Array(spki);
  let parsed: x509.PublicKey | undefined;
  return {
    get publicKey() {
      parsed ??= new x509.PublicKey(bytes);
      return parsed;
    },
    spki: bytes,
    keyType,
  };
}

/**
 * CertificationRequest ::= SEQUENCE { certificationRequestInfo SEQUENCE { version INTEGER (0), subject Name,
 * subjectPKInfo SEQUENCE, attributes [0] }, signatureAlgorithm SEQUENCE { OID, params? }, signature BIT STRING },
 * all strict DER, nothing after the outer SEQUENCE. Undefined for anything else.
 */
function splitCsr(der: Buffer): CsrParts | undefined {
  const outer = readDer(der, 0);
  if (outer === undefined || outer.tag !== 0x30 || outer.end !== der.length || !derWellFormed(der, outer)) {
    return undefined;
  }
  const top = derChildren(der, outer);
  if (top?.length !== 3) return undefined;
  const [info, algorithm, signature] = top as [DerNode, DerNode, DerNode];
  if (info.tag !== 0x30 || algorithm.tag !== 0x30 || signature.tag !== 0x03) return undefined;
  const fields = derChildren(der, info);
  if (fields?.length !== 4) return undefined;
  const [version, subject, spki, attributes] = fields as [DerNode, DerNode, DerNode, DerNode];
  const versionContent = derContent(der, version);
  if (version.tag !== 0x02 || versionContent.length !== 1 || versionContent[0] !== 0) return undefined;
  if (subject.tag !== 0x30 || !isName(der, subject) || spki.tag !== 0x30) return undefined;
  if (attributes.tag !== 0xa0 || !isAttributes(der, attributes)) return undefined;
  const algorithmFields = derChildren(der, algorithm);
  if (algorithmFields === undefined || algorithmFields.length < 1 || algorithmFields.length > 2) return undefined;
  const signatureOid = derOid(der, algorithmFields[0] as DerNode);
  const bits = derContent(der, signature);
  if (signatureOid === undefined || bits.length < 2 || bits[0] !== 0) return undefined;
  const params = algorithmFields[1];
  return {
    info: derBytes(der, info),
    spki: derBytes(der, spki),
    signatureOid,
    signatureParams: params === undefined ? undefined : derBytes(der, params),
    signature: bits.subarray(1),
  };
}

type DerNode = NonNullable<ReturnType<typeof readDer>>;

/** Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value }, the shape the parser expects. */
function isName(der: Buffer, name: DerNode): boolean {
  for (const rdn of derChildren(der, name) ?? []) {
    if (rdn.tag !== 0x31) return false;
    const attributes = derChildren(der, rdn) ?? [];
    if (attributes.length === 0) return false;
    for (const attribute of attributes) {
      const pair = derChildren(der, attribute);
      if (attribute.tag !== 0x30 || pair?.length !== 2 || derOid(der, pair[0] as DerNode) === undefined) return false;
    }
  }
  return true;
}

/**
 * attributes [0] IMPLICIT SET OF Attribute, Attribute ::= SEQUENCE { type OID, values SET OF ANY }: the shape only.
 * The values are never read, as the CA ignores every attribute: an extensionRequest whose value is not Extensions, or
 * holds an extension that does not match its schema, passes here (as it passes OpenSSL) although @peculiar/x509,
 * which parses requested extensions, refuses it on the general path.
 */
function isAttributes(der: Buffer, attributes: DerNode): boolean {
  for (const attribute of derChildren(der, attributes) ?? []) {
    const pair = attribute.tag === 0x30 ? derChildren(der, attribute) : undefined;
    if (pair?.length !== 2 || derOid(der, pair[0] as DerNode) === undefined || (pair[1] as DerNode).tag !== 0x31) {
      return false;
    }
  }
  return true;
}

/**
 * @peculiar/x509 reads the fields of a request it knows and skips the rest; OpenSSL refuses the rest. A request
 * accepted here would then hold bytes that no other reader takes as a request: an element after the signature,
 * inside the outer SEQUENCE (an unsigned passenger, like bytes after it), a field after the attributes, a version
 * INTEGER with a redundant leading octet, a signature BIT STRING with unused bits. The general path is BER (lengths
 * in any form, indefinite ones too), so these layers are walked as BER; countElements has read them whole.
 */
function refuseWhatOpensslRefuses(der: Buffer): void {
  const top = berChildren(der, 0);
  if (top === undefined) invalid('CSR cannot be parsed', 'malformed');
  if (top.length !== 3) invalid('CSR has elements after its signature', 'trailing_data');
  const [info, , signature] = top as [BerElement, BerElement, BerElement];
  const fields = berChildren(der, info.start);
  if (fields === undefined || fields.length > 4) {
    invalid('CSR CertificationRequestInfo has fields after its attributes', 'malformed');
  }
  const version = fields[0];
  if (version === undefined || !isMinimalInteger(der.subarray(version.contentStart, version.end))) {
    invalid('CSR version is not a minimally encoded INTEGER', 'malformed');
  }
  // A constructed (BER) BIT STRING is refused by the parser itself; a primitive one must use all its bits.
  if ((signature.tag & 0x20) === 0 && (signature.end === signature.contentStart || der[signature.contentStart] !== 0)) {
    invalid('CSR signature BIT STRING has unused bits', 'malformed');
  }
}

/** A BER element: its first tag octet, where its content starts, and the offset just past it. */
interface BerElement {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** The elements directly inside the constructed BER element at `offset`; undefined when they cannot be read. */
function berChildren(der: Buffer, offset: number): BerElement[] | undefined {
  const parent = berHeader(der, offset, der.length);
  if (parent === undefined || (parent.tag & 0x20) === 0) return undefined;
  const bound = parent.length === undefined ? der.length : parent.contentStart + parent.length;
  const children: BerElement[] = [];
  let at = parent.contentStart;
  while (at < bound) {
    // The end-of-contents octets of an indefinite length close the parent.
    if (parent.length === undefined && der[at] === 0 && der[at + 1] === 0) return children;
    const header = berHeader(der, at, bound);
    const end = skipElement(der, at, bound, 0, { left: MAX_CSR_ELEMENTS + 1 });
    if (header === undefined || end === undefined) return undefined;
    children.push({ tag: header.tag, start: at, contentStart: header.contentStart, end });
    at = end;
  }
  return parent.length === undefined ? undefined : children;
}

/** An INTEGER's content without a redundant leading 00 or FF octet (and not empty). */
function isMinimalInteger(content: Buffer): boolean {
  if (content.length === 0) return false;
  if (content.length === 1) return true;
  const [first, second] = content as unknown as [number, number];
  return !((first === 0x00 && second < 0x80) || (first === 0xff && second >= 0x80));
}

function paramsMatch(parts: CsrParts, nullParams: boolean): boolean {
  if (parts.signatureParams === undefined) return true;
  return nullParams && parts.signatureParams.equals(DER_NULL);
}

const DER_NULL = Buffer.from([0x05, 0x00]);

/**
 * The ASN.1 elements of the (BER) element at the start of `der`, counted past MAX_CSR_ELEMENTS only as one more
 * (MAX_CSR_ELEMENTS + 1 also for nesting past MAX_CSR_DEPTH); undefined when its encoding cannot be read. The
 * content of an OCTET or BIT STRING that reads as elements is counted too: the general path parses the values
 * of the extensions a request asks for.
 */
function countElements(der: Buffer): number | undefined {
  const budget = { left: MAX_CSR_ELEMENTS + 1 };
  const end = skipElement(der, 0, der.length, 0, budget);
  if (budget.left <= 0) return MAX_CSR_ELEMENTS + 1;
  return end === undefined ? undefined : MAX_CSR_ELEMENTS + 1 - budget.left;
}

/** The offset after the BER element at `offset` (which must end by `bound`), counting it and its contents. */
function skipElement(
  der: Buffer,
  offset: number,
  bound: number,
  depth: number,
  budget: { left: number },
): number | undefined {
  budget.left -= 1;
  if (depth > MAX_CSR_DEPTH) budget.left = 0;
  if (budget.left <= 0) return undefined;
  const header = berHeader(der, offset, bound);
  if (header === undefined) return undefined;
  let at = header.contentStart;
  if (header.length === undefined) {
    // Indefinite length (BER, constructed only): elements up to an end-of-contents 00 00.
    while (at + 1 < bound && !(der[at] === 0 && der[at + 1] === 0)) {
      const next = skipElement(der, at, bound, depth + 1, budget);
      if (next === undefined) return undefined;
      at = next;
    }
    return at + 1 < bound ? at + 2 : undefined;
  }
  const end = at + header.length;
  if ((header.tag & 0x20) !== 0) {
    for (let child = at; child < end; ) {
      const next = skipElement(der, child, end, depth + 1, budget);
      if (next === undefined) return undefined;
      child = next;
    }
  } else if (header.tag === 0x04 || header.tag === 0x03) {
    countEncapsulated(der, header.tag === 0x03 ? at + 1 : at, end, depth + 1, budget);
  }
  return end;
}

/**
 * The header of the BER element at `offset`, which must end by `bound`: its first tag octet (a high tag number's
 * octets are passed over), where its content starts, and its length (undefined: indefinite, constructed only).
 */
function berHeader(
  der: Buffer,
  offset: number,
  bound: number,
): { tag: number; contentStart: number; length: number | undefined } | undefined {
  if (offset >= bound) return undefined;
  const tag = der[offset] as number;
  let at = offset + 1;
  if ((tag & 0x1f) === 0x1f) {
    while (at < bound && ((der[at] as number) & 0x80) !== 0) at++;
    at++; // the last octet of the tag number
  }
  if (at >= bound) return undefined;
  const first = der[at++] as number;
  if (first === 0x80) return (tag & 0x20) === 0 ? undefined : { tag, contentStart: at, length: undefined };
  let length = first;
  if (first > 0x80) {
    const octets = first & 0x7f;
    if (octets > 4 || at + octets > bound) return undefined;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[at++] as number);
  }
  return at + length > bound ? undefined : { tag, contentStart: at, length };
}

/** Counts what a string's content holds when it reads as whole elements; leaves the budget alone when it does not. */
function countEncapsulated(der: Buffer, start: number, end: number, depth: number, budget: { left: number }): void {
  const trial = { left: budget.left };
  for (let at = start; at < end; ) {
    const next = skipElement(der, at, end, depth, trial);
    if (trial.left <= 0) {
      budget.left = 0;
      return;
    }
    if (next === undefined) return;
    at = next;
  }
  budget.left = trial.left;
}

/** Total length (header + content) of the DER element at the start of `der`, or -1 when the header is malformed. */
function derElementLength(der: Buffer): number {
  if (der.length < 2) return -1;
  const first = der[1] as number;
  if (first < 0x80) return 2 + first;
  const octets = first & 0x7f;
  if (octets === 0 || octets > 4 || der.length < 2 + octets) return -1;
  let length = 0;
  for (let i = 0; i < octets; i++) length = length * 256 + (der[2 + i] as number);
  return 2 + octets + length;
}

function invalid(message: string, reason: string, cause?: unknown): never {
  throw new MeshauthError('MESHAUTH_ERR_CSR_INVALID', message, { reason, cause });
}
