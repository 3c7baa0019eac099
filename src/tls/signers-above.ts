// The certificates a TLS server sent above its leaf that lie on a signed path up from it: each one that signed the
// leaf, or signed one of those, whatever order they were sent in. No sockets, no clock; the caller checks each one.
// OpenSSL builds its own path out of everything the server sent, so checking the certificates in the order sent can
// miss the one it used; checking every signer misses none, and leaves out a sent certificate that signed nothing.
import type { X509Certificate } from 'node:crypto';

/**
 * Signature checks that may fail in one search. An honest chain fails none: certificates that look like an issuer
 * (name, key identifier) but did not sign are what a hostile server sends to make each connection verify its
 * signatures on keys of its choosing (tens of milliseconds each on a slow curve). Past this, the search stops.
 */
const MAX_FAILED_CHECKS = 2;

/**
 * The certificates of `sent` on a signed path up from `leaf` (each names the one below as issued by it and its key
 * verifies that one's signature), nearest first, each once. The CA certificates of any path OpenSSL can build out
 * of `sent` are among them; a path through two certificates with the same key has both. Undefined when more than
 * MAX_FAILED_CHECKS certificates looked like a signer and were not: the caller refuses such a chain.
 */
export function signersAbove(leaf: X509Certificate, sent: readonly X509Certificate[]): X509Certificate[] | undefined {
  const pool = [...sent];
  const signers: X509Certificate[] = [];
  let failed = 0;
  for (let below: X509Certificate | undefined = leaf, next = 0; below !== undefined; below = signers[next++]) {
    for (let i = 0; i < pool.length; ) {
      const candidate = pool[i] as X509Certificate;
      if (!below.checkIssued(candidate)) {
        i++;
      } else if (below.verify(candidate.publicKey)) {
        signers.push(candidate);
        pool.splice(i, 1);
      } else if (++failed > MAX_FAILED_CHECKS) {
        return undefined;
      } else {
        i++;
      }
    }
  }
  return signers;
}
