// Bounded reasons for refused TLS handshakes (`meshauth_tls_handshake_failures_total{reason}`): OpenSSL's
// verification result for chain failures, the SVID validator's reason for SPIFFE-rule failures.
import { isMeshauthError } from '../errors/index.js';

export const HANDSHAKE_FAILURE_REASONS = [
  'no_client_cert',
  'unknown_ca',
  'expired',
  'not_yet_valid',
  'trust_domain',
  'no_uri_san',
  'multiple_uri_san',
  'leaf_is_ca',
  'bad_key_usage',
  'bad_intermediate',
  'bad_purpose',
  'policy',
  'not_tls',
  'protocol_version',
  'no_shared_cipher',
  // No protocol in common between the client's ALPN list and the server's (the TLS alert no_application_protocol, 120).
  'no_application_protocol',
  // Outbound only: the server's SVID is valid but names an ID the route does not expect.
  'peer_id_mismatch',
  'other',
] as const;

export type HandshakeFailureReason = (typeof HANDSHAKE_FAILURE_REASONS)[number];

const BY_VERIFY_ERROR: Readonly<Record<string, HandshakeFailureReason>> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  CERT_SIGNATURE_FAILURE: 'unknown_ca',
  CERT_UNTRUSTED: 'unknown_ca',
  // The CA's intermediate carries a URI name constraint for its trust domain: a violation is a foreign ID.
  PERMITTED_SUBTREE_VIOLATION: 'trust_domain',
  EXCLUDED_SUBTREE_VIOLATION: 'trust_domain',
  // A CA certificate of the chain that may not sign: no cA flag, or more CAs below it than its pathLen allows.
  INVALID_CA: 'bad_intermediate',
  INVALID_NON_CA: 'bad_intermediate',
  PATH_LENGTH_EXCEEDED: 'bad_intermediate',
  // OpenSSL reports the last error of the chain, and a CA certificate with cA=false ends on its purpose check as a
  // CA, as does a leaf without clientAuth: the peer certificate is gone by then (Node destroyed the socket), so
  // which one it was cannot be told apart here.
  INVALID_PURPOSE: 'bad_purpose',
  // Below the security level (a SHA-1 signature, a short key). Node 20 names none of these (it reports UNSPECIFIED,
  // counted as other); later versions do.
  CA_MD_TOO_WEAK: 'policy',
  EE_KEY_TOO_SMALL: 'policy',
  CA_KEY_TOO_SMALL: 'policy',
};

const BY_SVID_REASON: Readonly<Record<string, HandshakeFailureReason>> = {
  unknown_ca: 'unknown_ca',
  expired: 'expired',
  not_yet_valid: 'not_yet_valid',
  trust_domain: 'trust_domain',
  no_uri_san: 'no_uri_san',
  multiple_uri_san: 'multiple_uri_san',
  leaf_is_ca: 'leaf_is_ca',
  bad_key_usage: 'bad_key_usage',
  bad_intermediate: 'bad_intermediate',
  policy: 'policy',
  no_client_cert: 'no_client_cert',
};

const NOT_TLS_CODES: ReadonlySet<string> = new Set([
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_HTTPS_PROXY_REQUEST',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

// A server finding no ALPN protocol in common names the failure; a client names the alert it received.
const NO_APPLICATION_PROTOCOL_CODES: ReadonlySet<string> = new Set([
  'ERR_SSL_NO_APPLICATION_PROTOCOL',
  'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL',
]);

/** Reason for a `tlsClientError`: the socket's verification result first, then the OpenSSL error code. */
export function tlsClientErrorReason(error: Error & { code?: string }, verifyError: unknown): HandshakeFailureReason {
  if (typeof verifyError === 'string') {
    const byVerify = BY_VERIFY_ERROR[verifyError];
    if (byVerify !== undefined) return byVerify;
  } else if (verifyError instanceof Error) {
    const byVerify = BY_VERIFY_ERROR[(verifyError as Error & { code?: string }).code ?? ''];
    if (byVerify !== undefined) return byVerify;
  }
  const code = error.code ?? '';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no_client_cert';
  // The first bytes are no TLS record: plain-text HTTP (OpenSSL names a request line and CONNECT), or a record
  // header whose version is not 3.x. Checked before the VERSION match below, which would call them an old protocol.
  if (NOT_TLS_CODES.has(code)) return 'not_tls';
  // Checked before the PROTOCOL match below too: the TLS version was fine, the application protocols were not.
  if (NO_APPLICATION_PROTOCOL_CODES.has(code)) return 'no_application_protocol';
  if (code.includes('VERSION') || code.includes('PROTOCOL')) return 'protocol_version';
  if (code === 'ERR_SSL_NO_SHARED_CIPHER') return 'no_shared_cipher'; // e.g. a client offering only CBC suites
  if (code === 'ERR_SSL_CERTIFICATE_VERIFY_FAILED') return 'unknown_ca';
  // A handshake message over OpenSSL's limit (100 KiB by default): an oversized certificate chain.
  if (code === 'ERR_SSL_EXCESSIVE_MESSAGE_SIZE') return 'policy';
  return 'other';
}

/**
 * A client that closed before sending a byte (a TCP health check of a load balancer, a port scan, a client that gave
 * up) began no handshake, so none failed: not counted or logged as one, as the CA's door never sees it either. A
 * handshake timeout with no byte is the listener closing the connection: that one is counted.
 */
export function closedBeforeHandshake(error: Error & { code?: string }, bytesRead: number | undefined): boolean {
  return bytesRead === 0 && error.code !== 'ERR_TLS_HANDSHAKE_TIMEOUT';
}

/** Reason for a SPIFFE-rule failure found by verifyPeer() after the handshake. */
export function svidFailureReason(error: unknown): HandshakeFailureReason {
  if (!isMeshauthError(error)) return 'other';
  return BY_SVID_REASON[error.reason ?? ''] ?? 'other';
}

/**
 * Reason for an outbound connection whose TLS handshake refused the server (peer-connector.ts), or undefined when
 * the attempt failed before or around TLS (refused, reset, timed out): those are the endpoint's health, not a bad
 * certificate. `phase` and `cause` are PeerConnectError's.
 */
export function peerConnectFailureReason(phase: string, cause: unknown): HandshakeFailureReason | undefined {
  if (phase === 'identity') {
    if (!isMeshauthError(cause)) return 'other';
    if (cause.reason === 'peer_id_mismatch') return 'peer_id_mismatch';
    // The SPIFFE-rule, issuer and key checks wrap the rule that failed.
    return svidFailureReason(cause.cause);
  }
  if (phase !== 'connect' || !(cause instanceof Error)) return undefined;
  const code = (cause as Error & { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  // A client sees OpenSSL's verification result as the error's code.
  const byVerify = BY_VERIFY_ERROR[code];
  if (byVerify !== undefined) return byVerify;
  return code.startsWith('ERR_SSL_') ? tlsClientErrorReason(cause, undefined) : undefined;
}
