// CSRs a hostile or broken client might send: an RSA key with a small public exponent, a valid PEM with bytes
// after it, a DER with bytes appended inside the PEM. Each is a real, correctly self-signed PKCS#10 request.
import { generateKeyPairSync } from 'node:crypto';
import { createCsrPem, KEY_ALGORITHMS, toPem, x509 } from '../../src/pki/index.js';

const subtle = globalThis.crypto.subtle;

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
