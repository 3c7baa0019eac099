// The CA certificates between a TLS peer's leaf and a trust-bundle root, found among the certificates Node reported
// for the peer, whatever their order: each link is a certificate that names the one below as issued by it and whose
// key verifies its signature. Pure: no sockets, no clock; the caller checks each certificate of the path.
import { X509Certificate } from 'node:crypto';

export interface PeerIssuerPath {
  /** The CA certificates above the leaf, nearest first, as DER, the bundle root excluded. */
  readonly issuers: readonly Buffer[];
  /** True when the last certificate of the path (the leaf when `issuers` is empty) is signed by one of `roots`. */
  readonly complete: boolean;
}

/**
 * The path from `chain[0]` (the leaf) up to one of `roots` through the other certificates of `chain`, in any order,
 * each used once, at most `maxIssuers` of them. Node's issuerCertificate links stop early when a certificate's issuer
 * is the last one left in the list the client sent, and follow a name match without checking the signature, so the
 * certificates it reports are searched here rather than followed.
 */
export function peerIssuerPath(
  chain: readonly Buffer[],
  roots: readonly X509Certificate[],
  maxIssuers: number,
): PeerIssuerPath {
  const [leafDer, ...rest] = chain;
  if (leafDer === undefined) return { issuers: [], complete: false };
  const pool = rest.map((der) => ({ der, cert: new X509Certificate(der) }));
  const issuers: Buffer[] = [];
  let current = new X509Certificate(leafDer);
  for (;;) {
    if (roots.some((root) => signedBy(current, root))) return { issuers, complete: true };
    if (issuers.length >= maxIssuers) return { issuers, complete: false };
    const index = pool.findIndex(({ cert }) => signedBy(current, cert));
    const next = pool[index];
    if (next === undefined) return { issuers, complete: false };
    pool.splice(index, 1);
    issuers.push(next.der);
    current = next.cert;
  }
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}
