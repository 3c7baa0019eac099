// The verified identity of an mTLS peer, computed once per TLS connection and cached (WeakMap on the socket):
// OpenSSL has verified the chain in the handshake; here the leaf's SPIFFE rules are checked on
// the DER certificate, and the identity header value for the app (Envoy XFCC) is built once.
//
// A server socket's peer is read through getPeerCertificate(true), never getPeerX509Certificate(): the latter copies
// the first certificate of the chain the client sent (X509_dup) and removes it from the TLS session without freeing
// it (Node 20 and 24, OpenSSL 3), so every call leaks one native intermediate certificate, about 5.5 KB of RSS per
// connection that the V8 heap does not see (bench/profile/storm-memory.ts). getPeerCertificate(true) converts copies.
import { createHash, type KeyObject, X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { MeshauthError } from '../errors/index.js';
import type { SpiffeId, TrustDomain } from '../identity/index.js';
import { checkSvidIssuer, checkSvidLeafDer, parseCertificate, parseCertificateDerOnce } from '../pki/index.js';
import { peerIssuerPath } from './peer-issuer-path.js';
import { signersAbove } from './signers-above.js';

export interface VerifiedPeer {
  readonly id: SpiffeId;
  /** `id.toString()`, kept for metric labels. */
  readonly idString: string;
  /** Lower-case hex SHA-256 of the peer leaf's DER. */
  readonly hash: string;
  /** `By=<own ID>;Hash=<hash>;URI=<peer ID>`: the whole x-forwarded-client-cert value. */
  readonly xfcc: string;
  /** The leaf's public key and its `x5t#S256` thumbprint (base64url): what a passport link is checked with. */
  readonly publicKey: KeyObject;
  readonly thumbprint: string;
  /** The leaf's notAfter (ms since the epoch): past it, requests on the connection no longer speak for `id`. */
  readonly notAfterMs: number;
}

const peers = new WeakMap<TLSSocket, VerifiedPeer>();

/** The peer cached by verifyPeer(), or undefined for a socket that was never verified. */
export function peerOf(socket: TLSSocket): VerifiedPeer | undefined {
  return peers.get(socket);
}

/**
 * Checks the peer leaf of an authorized server-side TLS socket and caches the result on it. `chain` is the peer's
 * chain as DER, leaf first, as getPeerCertificate(true) reports it (peerChainDerOf; the inbound's acceptMtls reads
 * it once per connection). `roots` are the trust bundle's roots, one array per bundle (the links found to them are
 * remembered per array, root-links.ts): the CA certificates above the leaf are checked along the path to them
 * (checkPeerIssuerChain). Throws MeshauthError with a bounded `reason` (SVID codes) when the leaf breaks a SPIFFE
 * rule.
 */
export function verifyPeer(
  socket: TLSSocket,
  trustDomain: TrustDomain,
  ownId: SpiffeId,
  now: Date,
  chain: readonly Buffer[],
  roots: readonly X509Certificate[],
): VerifiedPeer {
  const cached = peers.get(socket);
  if (cached !== undefined) return cached;
  const raw = chain[0];
  if (raw === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', 'peer presented no certificate', { reason: 'no_client_cert' });
  }
  const leaf = checkSvidLeafDer(raw, chain[1], trustDomain, now);
  const id = leaf.id;
  const certificate = new X509Certificate(raw);
  checkPeerIssuerChain(certificate, chain.slice(1), roots);
  checkPeerKey(certificate.publicKey);
  const digest = createHash('sha256').update(raw).digest();
  const hash = digest.toString('hex');
  const idString = id.toString();
  // SPIFFE IDs contain none of , ; = " (the separators here), so no quoting is needed.
  const peer: VerifiedPeer = Object.freeze({
    id,
    idString,
    hash,
    xfcc: `By=${ownId};Hash=${hash};URI=${idString}`,
    publicKey: certificate.publicKey,
    thumbprint: digest.toString('base64url'),
    notAfterMs: leaf.notAfter.getTime(),
  });
  peers.set(socket, peer);
  return peer;
}

/**
 * Checks the CA certificates a TLS server sent above its leaf (OpenSSL verified the chain; cA, pathLen and key usage
 * are its part) against the rule it does not know: an intermediate carrying a workload's SPIFFE ID (one with a path)
 * is no SPIFFE signing certificate, whatever root signed it. On a TLS client Node's issuerCertificate links are the
 * certificates the server sent, in the order sent (names and signatures unchecked), while OpenSSL builds its path
 * out of all of them: so every sent certificate that signed the leaf or one above it is checked (signersAbove), and
 * neither padding nor order hides one; a sent certificate that signed none of them is left alone. A list longer than
 * MAX_SENT, or with certificates none of which signed the leaf, cannot be shown to hold the path OpenSSL verified:
 * refused. Throws MeshauthError with reason `bad_intermediate`.
 */
export function checkPeerIssuers(leaf: X509Certificate): void {
  const sent = sentAbove(leaf);
  if (sent === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', `peer sent more than ${MAX_SENT} certificates above its leaf`, {
      reason: 'bad_intermediate',
    });
  }
  const signers = signersAbove(leaf, sent);
  if (signers === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', 'peer sent certificates that name an issuer they are not', {
      reason: 'bad_intermediate',
    });
  }
  if (sent.length > 0 && signers.length === 0) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', 'no certificate the peer sent signed its leaf', {
      reason: 'bad_intermediate',
    });
  }
  for (const cert of signers) {
    const fingerprint = cert.fingerprint256;
    if (goodIssuers.has(fingerprint)) continue;
    checkSvidIssuer(parseCertificate(new Uint8Array(cert.raw)));
    // Intermediates are few and long-lived: remember the good ones rather than parse them per connection.
    if (goodIssuers.size >= MAX_GOOD_ISSUERS) goodIssuers.clear();
    goodIssuers.add(fingerprint);
  }
}

/**
 * The certificates linked above `leaf` (on a client: those the server sent after it, in that order), each once;
 * undefined for more than MAX_SENT links, copies counted, which is refused rather than read in part.
 */
function sentAbove(leaf: X509Certificate): X509Certificate[] | undefined {
  const seen = new Set<string>([leaf.fingerprint256]);
  const sent: X509Certificate[] = [];
  let links = 0;
  for (let cert = leaf.issuerCertificate; cert !== undefined; cert = cert.issuerCertificate) {
    if (++links > MAX_SENT) return undefined;
    const fingerprint = cert.fingerprint256;
    if (seen.has(fingerprint)) continue;
    seen.add(fingerprint);
    sent.push(cert);
  }
  return sent;
}

/** Far more than an honest chain (its intermediates, perhaps its root), few enough to search each against each. */
const MAX_SENT = 32;

/**
 * The DER certificates of a server socket's verified peer chain, leaf first (at most MAX_ISSUERS + 1): what
 * getPeerCertificate(true) reports: the chain the client sent and the root OpenSSL found for it, or the leaf alone
 * on a socket of Node 24's tls.Server (which has read the peer through getPeerX509Certificate() by then).
 */
export function peerChainDer(socket: TLSSocket): readonly Buffer[] {
  return peerChainDerOf(socket.getPeerCertificate(true));
}

/** peerChainDer from what the socket's getPeerCertificate(true) returned (acceptMtls reads it once). */
export function peerChainDerOf(peer: DetailedPeerCertificate): readonly Buffer[] {
  const chain: Buffer[] = [];
  let cert: DetailedPeerCertificate | undefined = peer;
  while (cert?.raw !== undefined && chain.length <= MAX_ISSUERS) {
    chain.push(cert.raw);
    if (cert.issuerCertificate === cert) break; // a self-signed root ends the chain
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * checkPeerIssuers for a chain given as its leaf and the DER certificates Node reported above it: those of the path
 * from the leaf to one of `roots` (the bundle's) are checked, found among them in any order (peerIssuerPath): Node's
 * links skip an intermediate the client sent nearest-last or out of order, and follow a look-alike that did not
 * sign, while OpenSSL verifies the path through it. A reported chain with no such path hides part of the verified
 * one, so it is refused (`bad_intermediate`). A leaf reported alone (Node 24's TLS server) leaves nothing to check.
 */
export function checkPeerIssuerChain(
  leaf: X509Certificate,
  above: readonly Buffer[],
  roots: readonly X509Certificate[],
): void {
  if (above.length === 0) return;
  const path = peerIssuerPath(leaf, above, roots, MAX_ISSUERS);
  if (!path.complete) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_CHAIN', 'peer chain as reported does not lead to a bundle root', {
      reason: 'bad_intermediate',
    });
  }
  for (let i = 0; i < path.issuers.length; i++) checkIssuerDer(path.issuers[i] as Buffer, path.issuerKeys[i] as string);
}

/** checkSvidIssuer on one CA certificate below a bundle root, skipped for one already found good. */
function checkIssuerDer(der: Buffer, key: string): void {
  if (goodIssuers.has(key)) return;
  checkSvidIssuer(parseCertificateDerOnce(der));
  if (goodIssuers.size >= MAX_GOOD_ISSUERS) goodIssuers.clear();
  goodIssuers.add(key);
}

/** More CA certificates than any chain the handshake accepts (the roots' pathLen allows one intermediate). */
const MAX_ISSUERS = 8;
const MAX_GOOD_ISSUERS = 256;
const goodIssuers = new Set<string>();

/**
 * The mesh's key types are P-256, Ed25519 and RSA-2048 (the CA issues nothing else): an RSA key shorter than 2048
 * bits is refused, which OpenSSL's default security level (1) would let through. Throws MeshauthError with reason
 * `policy`.
 */
export function checkPeerKey(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') return;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new MeshauthError('MESHAUTH_ERR_KEY_TYPE', `peer leaf has a ${bits}-bit RSA key`, { reason: 'policy' });
  }
}

const MIN_RSA_BITS = 2048;

/**
 * A server's chain after the handshake, for every outbound connection to a peer (HTTP and TCP): checkServerIdentity
 * saw the leaf only, so the CA certificates above it and the leaf's key are checked here, before any byte. The
 * failure is MESHAUTH_ERR_PEER_IDENTITY, reason `peer_svid_invalid`, the failed rule as its cause.
 */
export function serverChainError(
  socket: TLSSocket,
  leaf: X509Certificate | undefined = socket.getPeerX509Certificate(),
): MeshauthError | undefined {
  try {
    if (leaf === undefined) throw new Error('no server certificate');
    checkPeerIssuers(leaf);
    checkPeerKey(leaf.publicKey);
    return undefined;
  } catch (cause) {
    return peerSvidInvalid(cause);
  }
}

/** A peer whose certificate chain is no valid SVID chain; `cause` says which rule it broke. */
export function peerSvidInvalid(cause: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_PEER_IDENTITY', 'peer certificate chain is not a valid SVID chain', {
    reason: 'peer_svid_invalid',
    cause,
  });
}

/**
 * The chain Node linked above `leaf` (its issuerCertificate links: on a client, what the server sent), as DER, leaf
 * first, each certificate once: what a connection kept open is checked against again when a root leaves the bundle
 * (chainsToKept finds the path in it by signature, whatever the order). The leaf alone for a list serverChainError
 * refuses as too long. Node gives a peer certificate's links on its first read only: `leaf` is that read, the one
 * serverChainError checked.
 */
export function linkedChainDer(leaf: X509Certificate): Buffer[] {
  return [leaf.raw, ...(sentAbove(leaf) ?? []).map((cert) => cert.raw)];
}
