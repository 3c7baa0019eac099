// PKCS#10 certificate signing requests. The CA takes only the public key from a CSR (SPEC §3): it verifies the
// self-signature (proof of possession) and the key type, and ignores every requested name and extension.
// The input must be exactly one PEM block (whitespace around it allowed) whose DER is exactly one
// CertificationRequest: anything appended is refused, so what was signed is all that was sent.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { MeshauthError } from '../errors/index.js';
import { KEY_ALGORITHMS, type KeyPair, type KeyType, keyTypeOf } from './keys.js';
import { x509 } from './x509.js';

const MAX_CSR_PEM_BYTES = 16 * 1024;
const PEM_CSR = /-----BEGIN CERTIFICATE REQUEST-----[\s\S]+?-----END CERTIFICATE REQUEST-----/g;
/** One PEM block and nothing else (RFC 7468 §3: whitespace before and after is allowed). */
const WHOLE_PEM_CSR =
  /^\s*-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\s]+)-----END CERTIFICATE REQUEST-----\s*$/;
/** RSA public exponent F4: the only one accepted (small exponents such as 3 invite known attacks). */
const RSA_EXPONENT = 65537n;

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
  const whole = WHOLE_PEM_CSR.exec(pem);
  if (whole === null) invalid('CSR PEM has data before or after the CERTIFICATE REQUEST block', 'trailing_data');
  const der = Buffer.from((whole[1] as string).replace(/\s+/g, ''), 'base64');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(der);
  } catch (cause) {
    invalid('CSR cannot be parsed', 'malformed', cause);
  }
  // The parser stops after the outer SEQUENCE: bytes after it would be unsigned passengers.
  if (derElementLength(der) !== der.length)
    invalid('CSR DER has bytes after the CertificationRequest', 'trailing_data');
  let keyType: KeyType;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
    keyType = keyTypeOf(key);
  } catch (cause) {
    invalid('CSR key type is not supported (P-256, Ed25519 or RSA-2048)', 'key_type', cause);
  }
  if (keyType === 'rsa2048' && key.asymmetricKeyDetails?.publicExponent !== RSA_EXPONENT) {
    invalid('CSR RSA key must use the public exponent 65537', 'rsa_exponent');
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
