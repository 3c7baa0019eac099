// Client authentication by X509-SVID (renewal; tls_client_auth for `POST /v1/token`). The CA's TLS server asks every
// client for a certificate and lets those without one through (join-token bootstrap); OpenSSL verifies a presented
// chain against the bundle's roots, which server.ts gives the TLS server as `ca` (renewed with the CA's material).
// This check takes that verdict and reads the leaf alone, never the issuers the client sent: reading them means Node
// turning each into an object, and Node 24 crashes the whole process (SIGSEGV) on a certificate whose key is on a
// curve without a NIST name (brainpool, secp256k1), which anyone who can reach the CA could send as the "issuer" of a
// P-256 leaf. The leaf is safe to read: its key signed the handshake with one of the algorithms the TLS profile
// allows (src/tls/tls-profile.ts). After a verified handshake the leaf gets the SVID rules (URI SAN, key usage, CA
// flag, trust domain, validity at the CA's clock); the chain's own rules (signatures, validity, CA flags, path
// length, key usage, name constraints) are OpenSSL's.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshauthError } from '../errors/index.js';
import { checkSvidLeafDer, type TrustBundle, type ValidatedLeaf, type x509 } from '../pki/index.js';

/**
 * OpenSSL's verification codes (as Node names them) by the client_cert_* reason of the same refusal; the codes Node
 * has no name for come as OpenSSL's message (src/platform/tls-accept.ts).
 */
const REASON_BY_VERIFY_ERROR: ReadonlyMap<string, string> = new Map([
  ['CERT_HAS_EXPIRED', 'expired'],
  ['CERT_NOT_YET_VALID', 'not_yet_valid'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'unknown_ca'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'unknown_ca'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown_ca'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'unknown_ca'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'unknown_ca'],
  ['CERT_SIGNATURE_FAILURE', 'unknown_ca'],
  ['CERT_UNTRUSTED', 'unknown_ca'],
  ['CERT_REJECTED', 'unknown_ca'],
  ['CERT_CHAIN_TOO_LONG', 'chain_too_long'],
  ['INVALID_CA', 'issuer_not_ca'],
  ['PATH_LENGTH_EXCEEDED', 'path_length'],
  ['KEY_USAGE_NO_CERTSIGN', 'issuer_key_usage'],
  ['INVALID_PURPOSE', 'purpose'],
  ['PERMITTED_SUBTREE_VIOLATION', 'name_constraints'],
  ['EXCLUDED_SUBTREE_VIOLATION', 'name_constraints'],
  ['UNSUPPORTED_CONSTRAINT_TYPE', 'name_constraints'],
  ['UNSUPPORTED_CONSTRAINT_SYNTAX', 'name_constraints'],
  ['UNSUPPORTED_NAME_SYNTAX', 'name_constraints'],
  ['permitted subtree violation', 'name_constraints'],
  ['excluded subtree violation', 'name_constraints'],
  ['name constraints minimum and maximum not supported', 'name_constraints'],
  ['unsupported name constraint type', 'name_constraints'],
  ['unsupported or invalid name constraint syntax', 'name_constraints'],
  ['key usage does not include certificate signing', 'issuer_key_usage'],
  ['unhandled critical extension', 'critical_extension'],
  ['ca signature digest algorithm too weak', 'weak_signature'],
  ['ee key too small', 'weak_key'],
  ['ca certificate key too weak', 'weak_key'],
]);

/** What authenticatePeer needs of the CA's material: the trust domain's bundle and the current intermediate. */
export interface PeerTrust {
  readonly bundle: TrustBundle;
  readonly issuer: { readonly certificate: x509.X509Certificate };
}

/** The caller's SPIFFE ID, or MESHAUTH_ERR_CA_UNAUTHENTICATED with reason `no_credential` / `client_cert_<why>`. */
export function authenticatePeer(req: IncomingMessage, trust: PeerTrust, now: Date, what: string): ValidatedLeaf {
  const socket = req.socket as TLSSocket;
  const leaf = peerLeaf(socket);
  if (leaf === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_CA_UNAUTHENTICATED', `${what}: no client certificate`, {
      reason: 'no_credential',
    });
  }
  if (socket.authorized !== true) {
    // Node types it as an Error; at runtime it is OpenSSL's code as a string.
    const code = String(socket.authorizationError ?? 'UNSPECIFIED');
    throw new MeshauthError('MESHAUTH_ERR_CA_UNAUTHENTICATED', `client certificate rejected: ${code}`, {
      reason: `client_cert_${REASON_BY_VERIFY_ERROR.get(code) ?? REASON_BY_VERIFY_ERROR.get(code.toLowerCase()) ?? 'invalid'}`,
    });
  }
  try {
    // The current intermediate as the likely issuer: a leaf it signed (nearly every renewal) is read straight from
    // its DER; any other is parsed whole (about a millisecond more).
    return checkSvidLeafDer(leaf, trust.issuer.certificate, trust.bundle.trustDomain, now);
  } catch (error) {
    const reason = error instanceof MeshauthError ? (error.reason ?? 'invalid') : 'invalid';
    throw new MeshauthError(
      'MESHAUTH_ERR_CA_UNAUTHENTICATED',
      `client certificate rejected: ${(error as Error).message}`,
      { reason: `client_cert_${reason}`, cause: error },
    );
  }
}

/** The client's leaf as DER (getPeerCertificate(false): the leaf alone), kept per connection; undefined without one. */
function peerLeaf(socket: TLSSocket): Buffer | undefined {
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cached = leaves.get(socket);
  if (cached !== undefined) return cached;
  // Node's answer for a connection without a client certificate is an empty object.
  const raw = socket.getPeerCertificate(false)?.raw;
  if (raw === undefined || raw.length === 0) return undefined;
  leaves.set(socket, raw);
  return raw;
}

const leaves = new WeakMap<TLSSocket, Buffer>();
