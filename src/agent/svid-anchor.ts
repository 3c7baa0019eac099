// Whether an SVID's chain leads to a root of a trust bundle, by issuer name and signature alone: no clock, no
// extension rules (the validator judged those when the SVID arrived). The holder asks it once per credentials it
// holds, so /readyz can say that a bundle refresh dropped the root the SVID was issued under.
import { X509Certificate } from 'node:crypto';
import type { TrustBundle, X509Svid } from '../pki/index.js';

/** True when the leaf, through the SVID's own intermediates, was signed by a root of `bundle`. */
export function svidChainsToBundle(svid: X509Svid, bundle: TrustBundle): boolean {
  const roots = bundle.roots.map((root) => new X509Certificate(Buffer.from(root.rawData)));
  const issuers = svid.intermediates.map((cert) => new X509Certificate(Buffer.from(cert.rawData)));
  let current = new X509Certificate(svid.leafDer);
  // Each step climbs to another intermediate; a chain longer than the intermediates sent would repeat one.
  for (let depth = 0; depth <= issuers.length; depth++) {
    const child = current;
    if (roots.some((root) => issuedBy(child, root))) return true;
    const parent = issuers.find((issuer) => issuer !== child && issuedBy(child, issuer));
    if (parent === undefined) return false;
    current = parent;
  }
  return false;
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    // A key OpenSSL cannot use for this signature did not sign it.
    return false;
  }
}
