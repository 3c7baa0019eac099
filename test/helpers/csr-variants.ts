// CSRs a hostile or broken client might send: an RSA key with a small public exponent, a valid PEM with bytes
// after it, a DER with bytes appended inside the PEM, an EC key that is no point. Each is a real PKCS#10 request,
// correctly self-signed where its key can sign.
import {
  checkPrimeSync,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  generatePrimeSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import type { MeshauthError } from '../../src/errors/index.js';
import { createCsrPem, KEY_ALGORITHMS, toPem, verifyCsrPem, x509 } from '../../src/pki/index.js';
import { EncodingNoise, oid, tlv } from './der-writer.js';

const subtle = globalThis.crypto.subtle;

/**
 * Why verifyCsrPem refuses `pem` (its MESHAUTH_ERR_CSR_INVALID reason), or undefined when it accepts it. Any other
 * error (another code) fails the test that asked.
 */
export async function csrRefusalReason(pem: string): Promise<string | undefined> {
  const error = (await verifyCsrPem(pem).then(
    () => undefined,
    (e: unknown) => e,
  )) as MeshauthError | undefined;
  if (error === undefined) return undefined;
  if (error.code !== 'MESHAUTH_ERR_CSR_INVALID') throw error;
  return error.reason;
}

/** A self-signed CSR for an RSA-2048 key with public exponent `exponent` (e.g. 3). */
export async function rsaCsrWithExponent(exponent: number): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: exponent });
  return rsaCsrOf(privateKey, publicKey);
}

/**
 * Two primes whose product is a 2048-bit modulus: two random 1024-bit primes (`sound`), or a modulus anyone can
 * factor: 739 and a prime of 2038 bits (`small_factor`), two 1024-bit primes next to each other (`close_primes`).
 */
export function rsaPrimes(kind: 'sound' | 'small_factor' | 'close_primes'): [bigint, bigint] {
  for (let attempt = 0; attempt < 64; attempt++) {
    const [p, q] =
      kind === 'small_factor'
        ? [739n, prime(2038)]
        : kind === 'close_primes'
          ? nextToEachOther(prime(1024))
          : [prime(1024), prime(1024)];
    if ((p * q).toString(2).length === 2048 && gcd(RSA_E, (p - 1n) * (q - 1n)) === 1n) return [p, q];
  }
  throw new Error(`no ${kind} primes for a 2048-bit modulus in 64 attempts`);
}

/** A self-signed CSR for the RSA key (e = 65537) of primes `p` and `q`, sound or not. */
export async function rsaCsrFromPrimes(p: bigint, q: bigint): Promise<string> {
  const d = modInverse(RSA_E, (p - 1n) * (q - 1n));
  const b64 = (x: bigint) =>
    Buffer.from(x.toString(16).padStart(Math.ceil(x.toString(16).length / 2) * 2, '0'), 'hex').toString('base64url');
  const privateKey = createPrivateKey({
    key: {
      kty: 'RSA',
      n: b64(p * q),
      e: b64(RSA_E),
      d: b64(d),
      p: b64(p),
      q: b64(q),
      dp: b64(d % (p - 1n)),
      dq: b64(d % (q - 1n)),
      qi: b64(modInverse(q, p)),
    },
    format: 'jwk',
  });
  return rsaCsrOf(privateKey, createPublicKey(privateKey));
}

const RSA_E = 65537n;

function prime(bits: number): bigint {
  return generatePrimeSync(bits, { bigint: true });
}

/** `p` and the next prime after it (prime gaps near 2^1024 average about 710; the search stops far beyond). */
function nextToEachOther(p: bigint): [bigint, bigint] {
  for (let q = p + 2n; q < p + 200_000n; q += 2n) if (checkPrimeSync(q)) return [p, q];
  throw new Error('no prime within 200,000 of p');
}

function gcd(a: bigint, b: bigint): bigint {
  return b === 0n ? a : gcd(b, a % b);
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const quotient = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - quotient * r1, s1, s0 - quotient * s1];
  }
  return ((s0 % m) + m) % m;
}

async function rsaCsrOf(privateKey: KeyObject, publicKey: KeyObject): Promise<string> {
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const keys = {
    privateKey: await subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), algorithm, true, [
      'sign',
    ]),
    publicKey: await subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), algorithm, true, [
      'verify',
    ]),
  };
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=meshauth',
    keys,
    signingAlgorithm: KEY_ALGORITHMS.rsa2048.sign,
  });
  return csr.toString('pem');
}

/** The PEM of a valid CSR with `junk` appended to the DER before base64 (still one PEM block). */
export function withDerTrailer(pem: string, junk: Buffer): string {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  return toPem('CERTIFICATE REQUEST', Buffer.concat([der, junk]));
}

export { createCsrPem };

/** A self-signed CSR for a P-256 key whose proof of possession is signed with SHA-1 (ecdsa-with-SHA1). */
export async function p256CsrSignedWithSha1(): Promise<string> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const keys = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=meshauth',
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-1' },
  });
  return csr.toString('pem');
}

/**
 * A CSR whose SubjectPublicKeyInfo is id-ecPublicKey on the named curve `curveOid` with the encoded point `point`
 * as its key (a lone 00 octet is the point at infinity), signed (necessarily in vain) by a fresh P-256 key.
 */
export function ecCsrWithPoint(curveOid: string, point: Buffer): string {
  const spki = tlv(0x30, [tlv(0x30, [oid('1.2.840.10045.2.1'), oid(curveOid)]), tlv(0x03, [Buffer.of(0), point])]);
  const info = tlv(0x30, [Buffer.from('020100', 'hex'), tlv(0x30, []), spki, Buffer.from('a000', 'hex')]);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signature = tlv(0x03, [Buffer.of(0), sign('sha256', info, privateKey)]);
  return toPem('CERTIFICATE REQUEST', tlv(0x30, [info, tlv(0x30, [oid('1.2.840.10045.4.3.2')]), signature]));
}

/** `count` attributes `{cn, {NULL}}`: four tiny ASN.1 elements each, for a request cheap in bytes, costly to parse. */
export function emptyAttributes(count: number): Buffer {
  return tlv(
    0xa0,
    Array.from({ length: count }, () => tlv(0x30, [oid('2.5.4.3'), tlv(0x31, [Buffer.from([5, 0])])])),
  );
}

/** A correctly self-signed P-256 request with these attributes, its info in BER (indefinite length): not strict DER. */
export function berCsrWithAttributes(attributes: Buffer): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = tlv(
    0x30,
    [Buffer.from('020100', 'hex'), tlv(0x30, []), spki, attributes],
    new EncodingNoise(['indefinite']),
  );
  const signature = tlv(0x03, [Buffer.of(0), sign('sha256', info, privateKey)]);
  return toPem('CERTIFICATE REQUEST', tlv(0x30, [info, tlv(0x30, [oid('1.2.840.10045.4.3.2')]), signature]));
}

/**
 * A correctly self-signed CSR for a P-256 key written in the hybrid point form (06 or 07, then x and y), which
 * OpenSSL reads but certificates must not carry.
 */
export function hybridPointCsr(): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x as string, 'base64url');
  const y = Buffer.from(jwk.y as string, 'base64url');
  const point = Buffer.concat([Buffer.of(0x06 | ((y[31] as number) & 1)), x, y]);
  const spki = tlv(0x30, [
    tlv(0x30, [oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')]),
    tlv(0x03, [Buffer.of(0), point]),
  ]);
  const info = tlv(0x30, [Buffer.from('020100', 'hex'), tlv(0x30, []), spki, Buffer.from('a000', 'hex')]);
  const signature = tlv(0x03, [Buffer.of(0), sign('sha256', info, privateKey)]);
  return toPem('CERTIFICATE REQUEST', tlv(0x30, [info, tlv(0x30, [oid('1.2.840.10045.4.3.2')]), signature]));
}
