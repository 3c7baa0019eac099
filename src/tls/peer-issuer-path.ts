// The CA certificates between a TLS peer's leaf and a trust-bundle root, found among the certificates Node reported
// for the peer, whatever their order: each link is a certificate that names the one below as issued by it and whose
// key verifies its signature. No sockets, no clock; the caller checks each certificate of the path. A certificate
// above the leaf found signed by a root is remembered (root-links.ts): the next handshake through it neither parses
// it again nor verifies its signature, nor parses a root Node appended after it.
import { X509Certificate } from 'node:crypto';
import { derKey, linkedToRoots, rememberRootLink } from './root-links.js';

export interface PeerIssuerPath {
  /** The CA certificates above the leaf, nearest first, as DER, the bundle root excluded. */
  readonly issuers: readonly Buffer[];
  /** derKey of each of `issuers`, computed here already: the caller's caches use the same keys. */
  readonly issuerKeys: readonly string[];
  /** True when the last certificate of the path (the leaf when `issuers` is empty) is signed by one of `roots`. */
  readonly complete: boolean;
}

interface Candidate {
  readonly der: Buffer;
  readonly key: string;
  cert: X509Certificate | undefined;
  /** Found signed by one of the roots, on this handshake or an earlier one. */
  linked: boolean;
}

/**
 * The path from `leaf` up to one of `roots` through the certificates of `above` (the rest of the chain Node
 * reported), in any order, each used once, at most `maxIssuers` of them. Node's issuerCertificate links stop early
 * when a certificate's issuer is the last one left in the list the client sent, and follow a name match without
 * checking the signature, so the certificates it reports are searched here rather than followed.
 */
export function peerIssuerPath(
  leaf: X509Certificate,
  above: readonly Buffer[],
  roots: readonly X509Certificate[],
  maxIssuers: number,
): PeerIssuerPath {
  const pool: Candidate[] = above.map((der) => {
    const key = derKey(der);
    const cert = linkedToRoots(roots, key);
    return { der, key, cert, linked: cert !== undefined };
  });
  // Those known to link to a root first: their certificates are at hand, and Node 20's appended root is then
  // never parsed.
  pool.sort((a, b) => Number(b.linked) - Number(a.linked));
  const issuers: Buffer[] = [];
  const issuerKeys: string[] = [];
  if (roots.some((root) => signedBy(leaf, root))) return { issuers, issuerKeys, complete: true };
  let current = leaf;
  for (;;) {
    if (issuers.length >= maxIssuers) return { issuers, issuerKeys, complete: false };
    const index = pool.findIndex((candidate) => signedBy(current, certOf(candidate)));
    const next = pool[index];
    if (next === undefined) return { issuers, issuerKeys, complete: false };
    pool.splice(index, 1);
    issuers.push(next.der);
    issuerKeys.push(next.key);
    current = certOf(next);
    if (next.linked) return { issuers, issuerKeys, complete: true };
    if (roots.some((root) => signedBy(current, root))) {
      rememberRootLink(roots, next.key, current);
      return { issuers, issuerKeys, complete: true };
    }
  }
}

function certOf(candidate: Candidate): X509Certificate {
  candidate.cert ??= new X509Certificate(candidate.der);
  return candidate.cert;
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}
