export {
  BACKDATE_MS,
  createIntermediateCertificate,
  createLeafCertificate,
  createRootCertificate,
  INTERMEDIATE_TTL_MS,
  type Issuer,
  issueLeafDer,
  type LeafOptions,
  ROOT_TTL_MS,
  SVID_MAX_TTL_MS,
} from './certificate-builder.js';
export {
  certificateDerOfPemBlock,
  certificatePem,
  certificatePemBlocks,
  parseCertificate,
  parseCertificatesPem,
  sha256Hex,
  toPemChain,
  uriSans,
} from './certificates.js';
export { createCsrPem, type KeyWithCsr, newKeyWithCsr, type VerifiedCsr, verifyCsrPem } from './csr.js';
export { derFromP1363, p1363FromDer } from './ecdsa-signature.js';
export { importSpki, pkcs8PemOf, spkiDerOf } from './key-der.js';
export {
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  KEY_ALGORITHMS,
  KEY_TYPES,
  type KeyPair,
  type KeyType,
  keyTypeOf,
  parseKeyType,
  toPem,
} from './keys.js';
export { certificateSpkiDer } from './leaf-der.js';
export { uriNameConstraintsExtension } from './name-constraints.js';
export { parseCertificateDerOnce, parseCertificatesPemOnce } from './parsed-once.js';
// pkcs12.ts (pkijs, ~15 MiB) is not re-exported: only `ca issue --p12` needs it, and imports it directly.
export { randomSerialHex } from './serial.js';
export {
  checkSvidIssuer,
  checkSvidLeaf,
  checkSvidLeafDer,
  type ValidatedLeaf,
  validateX509Svid,
  validateX509SvidDer,
  validateX509SvidLeafDer,
} from './svid-validator.js';
export { createTlsServerIdentity, type TlsServerIdentity } from './tls-server-certificate.js';
export { TrustBundle } from './trust-bundle.js';
export { x509 } from './x509.js';
export { X509Svid } from './x509-svid.js';
