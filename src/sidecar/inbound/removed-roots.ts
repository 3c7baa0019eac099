// When the trust bundle loses a root, connections already established by peers whose chain leads to that root
// must not outlive it: new handshakes use the new bundle at once (setSecureContext), and these helpers find the
// live connections to cut. Synchronous node:crypto checks over the chain the peer presented.
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { TrustBundle } from '../../pki/index.js';

/** Roots of `before` that `after` no longer holds, as node:crypto certificates (empty when none left). */
export function removedRoots(before: TrustBundle | undefined, after: TrustBundle): X509Certificate[] {
  if (before === undefined) return [];
  const der = (root: TrustBundle['roots'][number]) => Buffer.from(root.rawData).toString('base64');
  const kept = new Set(after.roots.map(der));
  return before.roots
    .filter((root) => !kept.has(der(root)))
    .map((root) => new X509Certificate(Buffer.from(root.rawData)));
}

/**
 * The DER certificates of the peer's verified chain, leaf first. Read before anything else asks for the peer
 * certificate: after getPeerX509Certificate(), Node reports the leaf without its issuer chain.
 */
export function peerChainOf(socket: TLSSocket): readonly Buffer[] {
  const chain: Buffer[] = [];
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw !== undefined && chain.length < 8) {
    chain.push(cert.raw);
    if (cert.issuerCertificate === cert) break; // a self-signed root ends the chain
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** True when a certificate of `chain` was issued (and signed) by one of `roots`. */
export function chainsToAny(chain: readonly Buffer[], roots: readonly X509Certificate[]): boolean {
  for (const der of chain) {
    const cert = new X509Certificate(der);
    for (const root of roots) {
      if (cert.checkIssued(root) && cert.verify(root.publicKey)) return true;
    }
  }
  return false;
}
