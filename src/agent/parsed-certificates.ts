// Certificates the agent parses again and again — the CA's intermediate and the bundle come back unchanged with every
// SVID, and the bundle file rarely changes — parsed once per PEM text. Parsing a certificate through @peculiar/x509
// costs about a millisecond; the objects are immutable, so sharing them is safe. Bounded: a PEM never seen again
// costs a slot until the cache starts over.
import { parseCertificatesPem, type x509 } from '../pki/index.js';

const MAX_ENTRIES = 32;
const parsed = new Map<string, readonly x509.X509Certificate[]>();

/** parseCertificatesPem, remembered per exact PEM text (same errors). */
export function parseCertificatesPemCached(pem: string): x509.X509Certificate[] {
  const cached = parsed.get(pem);
  if (cached !== undefined) return [...cached];
  const certificates = parseCertificatesPem(pem);
  if (parsed.size >= MAX_ENTRIES) parsed.clear();
  parsed.set(pem, Object.freeze([...certificates]));
  return certificates;
}
