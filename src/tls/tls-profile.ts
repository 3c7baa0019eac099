// The mesh TLS profile: TLS 1.3 only by default (Mozilla "modern"); with tls12,
// TLS 1.2 restricted to ECDHE + AEAD suites ("intermediate" minus DHE). No renegotiation, no compression.
import { constants } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import type { Credentials } from '../agent/credential-holder.js';

const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const TLS12_AEAD_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/**
 * The signature algorithms offered and accepted in handshakes: ECDSA on the NIST curves, EdDSA, RSA (PSS, and PKCS#1
 * for TLS 1.2 peers), SHA-2 only. Left to its default, OpenSSL 3.5 (Node 24) also accepts ECDSA on the brainpool
 * curves in TLS 1.3, and Node 24 crashes the whole process (SIGSEGV) when it turns a certificate whose key is on a
 * curve without a NIST name (brainpool, secp256k1) into the object getPeerCertificate() returns: the CA reads the leaf
 * of every client that presents one before it has judged it (src/ca/peer-svid.ts), so a self-signed brainpool
 * certificate from anyone who can reach `ca serve` took it down. With this list such a key can sign no TLS 1.3
 * handshake (the client sends no certificate) and the ECDHE groups below refuse its curve in TLS 1.2 (wrong curve). The mesh issues
 * P-256, Ed25519 and RSA-2048 keys; P-384, P-521 and Ed448 stay accepted as before.
 */
const SIGNATURE_ALGORITHMS = [
  'ecdsa_secp256r1_sha256',
  'ecdsa_secp384r1_sha384',
  'ecdsa_secp521r1_sha512',
  'ed25519',
  'ed448',
  'rsa_pss_rsae_sha256',
  'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512',
  'rsa_pss_pss_sha256',
  'rsa_pss_pss_sha384',
  'rsa_pss_pss_sha512',
  'rsa_pkcs1_sha256',
  'rsa_pkcs1_sha384',
  'rsa_pkcs1_sha512',
].join(':');

export interface TlsProfile {
  /** Also accept TLS 1.2 (ECDHE + AEAD only). */
  readonly tls12: boolean;
}

/** Protocol and cipher options shared by every mesh listener and connector. */
export function protocolOptions(profile: TlsProfile): SecureContextOptions {
  return {
    minVersion: profile.tls12 ? 'TLSv1.2' : 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: (profile.tls12 ? [...TLS13_SUITES, ...TLS12_AEAD_SUITES] : TLS13_SUITES).join(':'),
    // Renegotiation off; compression is never built into Node's OpenSSL.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    ecdhCurve: 'X25519:P-256:P-384',
    sigalgs: SIGNATURE_ALGORITHMS,
  };
}

/**
 * `secureOptions` of a server that resumes no TLS session: a resumed session is not verified again (neither the
 * chain by OpenSSL nor, on a client, the SPIFFE rules by checkServerIdentity), and carries no client chain, so it
 * would stand for a peer certificate checked once, however long ago. Node keeps no server session cache without
 * 'newSession' listeners, so with tickets off nothing can be resumed.
 */
export function withoutResumption(secureOptions: number | undefined): number {
  return (secureOptions ?? 0) | constants.SSL_OP_NO_TICKET;
}

/** Secure-context options for a workload's credentials: its chain and key, the bundle roots as `ca`. */
export function credentialOptions(credentials: Credentials): SecureContextOptions {
  return {
    cert: credentials.svid.certChainPem,
    key: credentials.svid.privateKeyPem,
    ca: [...credentials.bundle.toPemList()],
  };
}

/**
 * One client SecureContext per credential rotation: the PEM chain, key and bundle are parsed once and every
 * outbound connection reuses it (`secureContext` option) instead of re-parsing them per connection.
 */
export function clientSecureContext(profile: TlsProfile, credentials: Credentials): SecureContext {
  return createSecureContext({ ...protocolOptions(profile), ...credentialOptions(credentials) });
}

/**
 * Server options of the inbound mTLS listener: the client certificate is required and its chain verified by
 * OpenSSL against the bundle during the handshake; SPIFFE leaf rules are checked right after (verifyPeer).
 */
export function mtlsServerOptions(profile: TlsProfile, credentials: Credentials | undefined): TlsOptions {
  const protocol = protocolOptions(profile);
  return {
    ...protocol,
    ...(credentials === undefined ? {} : credentialOptions(credentials)),
    requestCert: true,
    rejectUnauthorized: true,
    // Between sidecars a connection lasts, so a full handshake per connection costs next to nothing.
    secureOptions: withoutResumption(protocol.secureOptions),
    ALPNProtocols: ['h2', 'http/1.1'],
    handshakeTimeout: 10_000,
  };
}
