// The CA certificates found signed by a trust bundle's root, remembered per roots array (the inbound keeps one per
// bundle, so a new bundle starts empty and the old entries go with its array) and per exact DER. Whether a root
// signed a given certificate cannot change, and finding out costs a parse and a signature verification, on every
// handshake of every peer of that intermediate otherwise. Only links found are remembered, at most MAX_LINKS per
// roots array: a client sending ever new intermediates costs a slot each, never growth, and nothing unless a root
// signed them.
import { createHash, type X509Certificate } from 'node:crypto';

const MAX_LINKS = 32;
const linksByRoots = new WeakMap<readonly X509Certificate[], Map<string, X509Certificate>>();

/** The key of a certificate's DER in these caches: its SHA-256, cheaper to compute than an encoding of the bytes. */
export function derKey(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64');
}

/** The certificate of DER `key`, parsed when it was found signed by one of `roots`; undefined when never found. */
export function linkedToRoots(roots: readonly X509Certificate[], key: string): X509Certificate | undefined {
  return linksByRoots.get(roots)?.get(key);
}

/** Remembers that one of `roots` signed `cert` (DER `key`). */
export function rememberRootLink(roots: readonly X509Certificate[], key: string, cert: X509Certificate): void {
  let links = linksByRoots.get(roots);
  if (links === undefined) {
    links = new Map();
    linksByRoots.set(roots, links);
  }
  if (links.size >= MAX_LINKS) links.clear();
  links.set(key, cert);
}
