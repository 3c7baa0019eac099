// The certificates a TLS server sent above its leaf that lie on a signed path up from it: each one that signed the
// leaf, or signed one of those, whatever order they were sent in. No sockets, no clock; the caller checks each one.
// OpenSSL builds its own path out of everything the server sent, so checking the certificates in the order sent can
// miss the one it used; checking every signer misses none, and leaves out a sent certificate that signed nothing.
import type { X509Certificate } from 'node:crypto';

/**
 * The certificates of `sent` on a signed path up from `leaf` (each names the one below as issued by it and its key
 * verifies that one's signature), nearest first, each once. The CA certificates of any path OpenSSL can build out
 * of `sent` are among them; a path through two certificates with the same key has both.
 */
export function signersAbove(leaf: X509Certificate, sent: readonly X509Certificate[]): X509Certificate[] {
  const pool = [...sent];
  const signers: X509Certificate[] = [];
  for (let below: X509Certificate | undefined = leaf, next = 0; below !== undefined; below = signers[next++]) {
    for (let i = 0; i < pool.length; ) {
      const candidate = pool[i] as X509Certificate;
      if (below.checkIssued(candidate) && below.verify(candidate.publicKey)) {
        signers.push(candidate);
        pool.splice(i, 1);
      } else {
        i++;
      }
    }
  }
  return signers;
}
