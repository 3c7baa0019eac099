// PKCS#10 certificate signing requests. The CA takes only the public key from a CSR (SPEC §3): it verifies the
// self-signature (proof of possession) and the key type, and ignores every requested name and extension.
import { createPublicKey } from 'node:crypto';
import { MeshauthError } from '../errors/index.js';
import { KEY_ALGORITHMS, type KeyPair, type KeyType, keyTypeOf } from './keys.js';
import { x509 } from './x509.js';

const MAX_CSR_PEM_BYTES = 16 * 1024;
const PEM_CSR = /-----BEGIN CERTIFICATE REQUEST-----[\s\S]+?-----END CERTIFICATE REQUEST-----/g;

export async function createCsrPem(keys: KeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'O=meshauth',
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: KEY_ALGORITHMS[keys.type].sign,
  });
  return csr.toString('pem');
}

export interface VerifiedCsr {
  readonly publicKey: x509.PublicKey;
  readonly keyType: KeyType;
}

export async function verifyCsrPem(pem: string): Promise<VerifiedCsr> {
  if (Buffer.byteLength(pem) > MAX_CSR_PEM_BYTES) invalid('CSR is larger than 16 KiB', 'too_large');
  const blocks = pem.match(PEM_CSR) ?? [];
  if (blocks.length !== 1) invalid(`expected exactly one PEM CERTIFICATE REQUEST block, found ${blocks.length}`, 'pem');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(blocks[0] as string);
  } catch (cause) {
    invalid('CSR cannot be parsed', 'malformed', cause);
  }
  let keyType: KeyType;
  try {
    keyType = keyTypeOf(createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' }));
  } catch (cause) {
    invalid('CSR key type is not supported (P-256, Ed25519 or RSA-2048)', 'key_type', cause);
  }
  let signatureValid = false;
  try {
    signatureValid = await csr.verify();
  } catch (cause) {
    invalid('CSR signature cannot be verified', 'signature', cause);
  }
  if (!signatureValid) invalid('CSR signature is invalid', 'signature');
  return { publicKey: csr.publicKey, keyType };
}

function invalid(message: string, reason: string, cause?: unknown): never {
  throw new MeshauthError('MESHAUTH_ERR_CSR_INVALID', message, { reason, cause });
}
