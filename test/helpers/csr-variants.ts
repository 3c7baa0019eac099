// CSRs a hostile or broken client might send: an RSA key with a small public exponent, a valid PEM with bytes
// after it, a DER with bytes appended inside the PEM, an EC key that is no point. Each is a real PKCS#10 request,
// correctly self-signed where its key can sign.
import { generateKeyPairSync, sign } from 'node:crypto';
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
