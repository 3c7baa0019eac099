// P-256 and Ed25519 keys have one DER layout each for their SubjectPublicKeyInfo and PKCS#8 forms: a fixed prefix
// and the key bytes. Going through JWK (the raw numbers) instead of OpenSSL 3's generic encoder and decoder chains
// costs a tenth of the CPU (about 0.3 ms less per key on Node 20), which the agent pays for every SVID and the CA
// for every CSR (reading a key back on OpenSSL 3.5 is the exception: see importSpki). Any other key takes
// node:crypto's DER path. What is written is the canonical form: named curve, uncompressed point, and for a P-256
// private key its public key too. That is byte for byte what node:crypto writes for keys it generated (a unit test
// holds it to that); a key imported with explicit curve parameters, a compressed point or without its public key
// comes out in this canonical form instead of as it was read.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { MeshauthError } from '../errors/index.js';
import { derChildren, derContent, derOid, derTlv, derUnsignedInteger, readDer } from './der.js';
import type { KeyType } from './issuance-options.js';
import { toPem } from './keys.js';

/** SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { 0 unused bits, 04 (uncompressed) … } }. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');
/** SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING { 0 unused bits, … } }. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/**
 * PrivateKeyInfo { version 0, { id-ecPublicKey, prime256v1 }, OCTET STRING { ECPrivateKey { version 1,
 * OCTET STRING d (32 bytes) … } } }, as OpenSSL writes it: no [0] parameters (they are in the algorithm), then
 * [1] { BIT STRING 04 x y } after d.
 */
const P256_PKCS8_PREFIX = Buffer.from(
  '308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420',
  'hex',
);
const P256_PKCS8_PUBLIC_KEY = Buffer.from('a14403420004', 'hex');
/** PrivateKeyInfo { version 0, { id-Ed25519 }, OCTET STRING { OCTET STRING seed (32 bytes) } }. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** AlgorithmIdentifier { rsaEncryption, NULL }: the only parameters an rsaEncryption key may have. */
const RSA_ALGORITHM = Buffer.from('300d06092a864886f70d0101010500', 'hex');

const P256_COORDINATE_BYTES = 32;
const EC_PUBLIC_KEY_OID = '1.2.840.10045.2.1';
/**
 * The first octet of an encoded EC point a certificate may carry: 02/03 compressed, 04 uncompressed. 00 is the
 * point at infinity; 06 and 07, the hybrid form (x and y both, with y's parity), are not allowed in certificates and
 * the CA copies the request's key into the SVID as it is.
 */
const EC_POINT_FORMS = new Set([0x02, 0x03, 0x04]);
const ED25519_KEY_BYTES = 32;
/**
 * The y coordinates (little-endian, the x sign bit cleared) of the eight Ed25519 points of small order: the identity,
 * the point of order 2 (y = p - 1), those of order 4 (y = 0) and of order 8. Under such a key a signature can be
 * made without any private key (R the identity and S = 0 verifies for every message under the identity key, and
 * OpenSSL 3.0, Node 20's, checks neither the key nor R): a request "signed" that way proves no possession, and the
 * SVID issued for it could be used by anyone who sees it.
 */
const ED25519_SMALL_ORDER_Y = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
].map((hex) => Buffer.from(hex, 'hex'));

interface Jwk {
  readonly kty?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly d?: string;
  readonly n?: string;
  readonly e?: string;
}

/** The key's SubjectPublicKeyInfo, DER. Takes a public or a private key (of which the public half is encoded). */
export function spkiDerOf(key: KeyObject): Buffer {
  const fixed = fixedLayout(key);
  if (fixed === undefined) {
    return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  }
  return spkiOfLayout(fixed);
}

/** The private key as PKCS#8 PEM (`BEGIN PRIVATE KEY`). */
export function pkcs8PemOf(privateKey: KeyObject): string {
  const fixed = fixedLayout(privateKey);
  if (fixed?.d === undefined) return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return pkcs8PemOfLayout(fixed, fixed.d);
}

/**
 * A new private key's SubjectPublicKeyInfo (DER) and PKCS#8 PEM together, from one JWK export of the key: the
 * agent writes both for every SVID, and the export is the largest part of each.
 */
export function privateKeyEncodings(privateKey: KeyObject): { readonly spkiDer: Buffer; readonly pkcs8Pem: string } {
  const fixed = fixedLayout(privateKey);
  if (fixed?.d === undefined) return { spkiDer: spkiDerOf(privateKey), pkcs8Pem: pkcs8PemOf(privateKey) };
  return { spkiDer: spkiOfLayout(fixed), pkcs8Pem: pkcs8PemOfLayout(fixed, fixed.d) };
}

/**
 * Whether OpenSSL's decoder reads a fixed-layout key faster than node:crypto's JWK import. On OpenSSL 3.5 (Node 24)
 * a P-256 SubjectPublicKeyInfo in PEM takes 13 µs there against 35 µs as JWK, where Node 24 first tries the
 * argument as a KeyObject and as a CryptoKey (each try an exception with its stack); on OpenSSL 3.0 (Node 20 and
 * 22) the decoder takes 98 µs against 60.
 */
const DECODER_READS_FAST = (() => {
  const [major = 0, minor = 0] = process.versions.openssl.split('.').map(Number);
  return major > 3 || (major === 3 && minor >= 5);
})();

/**
 * The public key of a DER SubjectPublicKeyInfo: P-256 (uncompressed point) and Ed25519 from their key bytes, as
 * PEM or JWK, whichever this OpenSSL reads faster (both check that a P-256 point lies on the curve); anything else,
 * RSA included, through the DER decoder.
 */
export function importSpki(spki: Buffer): KeyObject {
  const fixed = fixedLayoutKeyType(spki);
  if (fixed === 'ed25519') refuseWeakEd25519Key(spki.subarray(ED25519_SPKI_PREFIX.length));
  // A string argument is the one node:crypto tries as nothing but PEM.
  if (fixed !== undefined && DECODER_READS_FAST) return createPublicKey(toPem('PUBLIC KEY', spki));
  if (fixed === 'p256') {
    const at = P256_SPKI_PREFIX.length;
    const x = spki.subarray(at, at + P256_COORDINATE_BYTES).toString('base64url');
    const y = spki.subarray(at + P256_COORDINATE_BYTES).toString('base64url');
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
  }
  if (fixed === 'ed25519') {
    const x = spki.subarray(ED25519_SPKI_PREFIX.length).toString('base64url');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  }
  refuseUnreadableEcKey(spki);
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

/**
 * Whether the SPKI is one of the two fixed layouts importSpki reads from the key bytes. Such an SPKI is DER by
 * construction (every header is fixed, the key fills the rest) and is the canonical encoding of the key read from it,
 * so it needs no re-encoding to be compared; any other SPKI went through OpenSSL's lenient decoder.
 */
export function isFixedLayoutSpki(spki: Buffer): boolean {
  return fixedLayoutKeyType(spki) !== undefined;
}

/**
 * The key type of an SPKI of one of the two fixed layouts, known from its bytes (importSpki reads such an SPKI as a
 * key of that type or throws); undefined for any other SPKI. Node 24 takes about 15 µs to say the same of the
 * KeyObject (`asymmetricKeyDetails`).
 */
export function fixedLayoutKeyType(spki: Buffer): KeyType | undefined {
  if (isP256Layout(spki)) return 'p256';
  if (isEd25519Layout(spki)) return 'ed25519';
  return undefined;
}

/**
 * An RSA public key's SubjectPublicKeyInfo, DER, written from its modulus and exponent (one JWK export, about 25 µs)
 * rather than by OpenSSL's encoder chain (about 0.45 ms on Node 20): byte for byte the same, which a unit test holds
 * it to. For checking that an SPKI read through the lenient decoder is the key's own encoding.
 */
export function rsaSpkiDerOf(key: KeyObject): Buffer {
  const { n, e } = key.export({ format: 'jwk' }) as Jwk;
  const rsaPublicKey = derTlv(0x30, unsignedInteger(n), unsignedInteger(e));
  return derTlv(0x30, RSA_ALGORITHM, derTlv(0x03, Buffer.of(0), rsaPublicKey));
}

/** An RSA public key's modulus (one JWK export, about 25 µs). */
export function rsaModulusOf(key: KeyObject): bigint {
  const { n } = key.export({ format: 'jwk' }) as Jwk;
  return BigInt(`0x${Buffer.from(n ?? '', 'base64url').toString('hex') || '0'}`);
}

/** A DER INTEGER of the unsigned big-endian base64url number (a JWK's `n`, `e`). */
function unsignedInteger(base64url: string | undefined): Buffer {
  return derUnsignedInteger(Buffer.from(base64url ?? '', 'base64url'));
}

function isP256Layout(spki: Buffer): boolean {
  return spki.length === P256_SPKI_PREFIX.length + 2 * P256_COORDINATE_BYTES && startsWith(spki, P256_SPKI_PREFIX);
}

function isEd25519Layout(spki: Buffer): boolean {
  return spki.length === ED25519_SPKI_PREFIX.length + ED25519_KEY_BYTES && startsWith(spki, ED25519_SPKI_PREFIX);
}

/**
 * OpenSSL decodes an EC key whose point is the point at infinity (a lone 00 octet) or whose curve is given by
 * explicit parameters, but Node 20 then aborts the whole process on the first read of the key's details or its
 * JWK (a failed native assertion, not an exception): a CSR carrying such a key stopped `ca serve` before any
 * credential was checked. Such keys are refused here, before OpenSSL sees them; so are a point in the hybrid form,
 * which no certificate may carry, and an SPKI that is not strict DER, whose algorithm could not be read.
 */
function refuseUnreadableEcKey(spki: Buffer): void {
  const outer = readDer(spki, 0);
  const parts = outer?.tag === 0x30 && outer.end === spki.length ? derChildren(spki, outer) : undefined;
  const [algorithm, key] = parts?.length === 2 ? parts : [];
  const fields = algorithm?.tag === 0x30 ? derChildren(spki, algorithm) : undefined;
  const oid = fields?.[0] === undefined ? undefined : derOid(spki, fields[0]);
  if (key?.tag !== 0x03 || oid === undefined) unsupportedKey('SubjectPublicKeyInfo is not DER');
  if (oid !== EC_PUBLIC_KEY_OID) return;
  const curve = fields?.length === 2 ? fields[1] : undefined;
  const point = derContent(spki, key);
  if (curve === undefined || derOid(spki, curve) === undefined) unsupportedKey('EC key without a named curve');
  if (point.length < 3 || point[0] !== 0 || !EC_POINT_FORMS.has(point[1] as number)) {
    unsupportedKey('EC public key is not a compressed or uncompressed point');
  }
}

/**
 * Refuses an Ed25519 public key that is a point of small order, or whose y is not below p = 2^255 - 19 (no
 * canonical encoding of any point: p and p + 1 are y = 0 and y = 1 again). Every other 32 bytes are either a
 * point of large order or no point at all, which the decoder refuses.
 */
function refuseWeakEd25519Key(key: Buffer): void {
  const y = Buffer.from(key);
  y[31] = (y[31] as number) & 0x7f;
  if (ED25519_SMALL_ORDER_Y.some((point) => point.equals(y))) unsupportedKey('Ed25519 public key of small order');
  let belowP = y[31] !== 0x7f || (y[0] as number) < 0xed;
  for (let i = 1; i < 31 && !belowP; i++) belowP = y[i] !== 0xff;
  if (!belowP) unsupportedKey('Ed25519 public key is not canonically encoded');
}

function unsupportedKey(message: string): never {
  throw new MeshauthError('MESHAUTH_ERR_KEY_TYPE', message);
}

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.subarray(0, prefix.length).equals(prefix);
}

/** A P-256 key's coordinates or an Ed25519 key's bytes, and `d` for a private key. */
type FixedLayout =
  | { readonly kind: 'p256'; readonly x: Buffer; readonly y: Buffer; readonly d?: Buffer }
  | { readonly kind: 'ed25519'; readonly x: Buffer; readonly d?: Buffer };

function spkiOfLayout(fixed: FixedLayout): Buffer {
  return fixed.kind === 'p256'
    ? Buffer.concat([P256_SPKI_PREFIX, fixed.x, fixed.y])
    : Buffer.concat([ED25519_SPKI_PREFIX, fixed.x]);
}

function pkcs8PemOfLayout(fixed: FixedLayout, d: Buffer): string {
  const der =
    fixed.kind === 'p256'
      ? Buffer.concat([P256_PKCS8_PREFIX, d, P256_PKCS8_PUBLIC_KEY, fixed.x, fixed.y])
      : Buffer.concat([ED25519_PKCS8_PREFIX, d]);
  return toPem('PRIVATE KEY', der);
}

/** The key bytes of a P-256 or Ed25519 key, each of the exact length its layout needs; else undefined. */
function fixedLayout(key: KeyObject): FixedLayout | undefined {
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'ed25519') return undefined;
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return undefined;
  const jwk = key.export({ format: 'jwk' }) as Jwk;
  const bytes = (value: string | undefined, length: number) => {
    const decoded = value === undefined ? undefined : Buffer.from(value, 'base64url');
    return decoded?.length === length ? decoded : undefined;
  };
  const length = type === 'ec' ? P256_COORDINATE_BYTES : ED25519_KEY_BYTES;
  const x = bytes(jwk.x, length);
  const d = key.type === 'private' ? bytes(jwk.d, length) : undefined;
  if (x === undefined || (key.type === 'private' && d === undefined)) return undefined;
  const secret = d === undefined ? {} : { d };
  if (type === 'ed25519') return { kind: 'ed25519', x, ...secret };
  const y = bytes(jwk.y, length);
  return y === undefined ? undefined : { kind: 'p256', x, y, ...secret };
}
