// Certificates that come back again and again — a CA's intermediate and bundle with every SVID, the intermediates
// every workload of a trust domain sends at renewal — parsed once. Parsing through @peculiar/x509 costs about a
// millisecond; the objects are immutable, so sharing them is safe. Bounded: when a cache is full it starts over, so
// a stream of never-repeated inputs costs a slot each, never growth.
import { parseCertificate, parseCertificatesPem } from './certificates.js';
import type { x509 } from './x509.js';

const MAX_ENTRIES = 64;
const byPem = new Map<string, readonly x509.X509Certificate[]>();
const byDer = new Map<string, x509.X509Certificate>();

/** parseCertificatesPem, remembered per exact PEM text (same errors; a failure is not remembered). */
export function parseCertificatesPemOnce(pem: string): x509.X509Certificate[] {
  const cached = byPem.get(pem);
  if (cached !== undefined) return [...cached];
  const certificates = parseCertificatesPem(pem);
  remember(byPem, pem, Object.freeze([...certificates]));
  return certificates;
}

/** parseCertificate of DER bytes, remembered per exact bytes (same errors; a failure is not remembered). */
export function parseCertificateDerOnce(der: Uint8Array): x509.X509Certificate {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const cached = byDer.get(key);
  if (cached !== undefined) return cached;
  const certificate = parseCertificate(new Uint8Array(der));
  remember(byDer, key, certificate);
  return certificate;
}

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= MAX_ENTRIES) cache.clear();
  cache.set(key, value);
}
