// Parsing and printing certificates: PEM bundles in, @peculiar/x509 certificates out. Pure (no I/O).
import { MeshauthError } from '../errors/index.js';
import { x509 } from './x509.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM text, in order. Throws when there is none or one does not parse. */
export function parseCertificatesPem(pem: string): x509.X509Certificate[] {
  const blocks = certificatePemBlocks(pem);
  if (blocks.length === 0) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_MALFORMED', 'no PEM certificate found', { reason: 'no_certificate' });
  }
  return blocks.map((block) => parseCertificate(block));
}

/** The CERTIFICATE blocks of a PEM text, in order (none: an empty list). */
export function certificatePemBlocks(pem: string): string[] {
  return pem.match(PEM_CERT) ?? [];
}

/** The DER inside one CERTIFICATE block; not checked here (the caller parses or validates it). */
export function certificateDerOfPemBlock(block: string): Uint8Array {
  return new Uint8Array(Buffer.from(block.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64'));
}

export function parseCertificate(data: string | Uint8Array | ArrayBuffer): x509.X509Certificate {
  try {
    return new x509.X509Certificate(data as string | ArrayBuffer);
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_SVID_MALFORMED', 'certificate cannot be parsed', {
      reason: 'malformed',
      cause,
    });
  }
}

/** The PEM @peculiar/x509 writes for a certificate (64-column base64, no trailing newline), from its DER. */
export function certificatePem(der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----`;
}

export function toPemChain(certificates: readonly x509.X509Certificate[]): string {
  return certificates.map((c) => `${c.toString('pem')}\n`).join('');
}

/**
 * URI SANs read from the parsed extension, never by splitting Node's subjectaltname string: a crafted name with
 * separators in it could pass for another.
 */
export function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.extensions.find(
    (e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension,
  );
  if (san === undefined) return [];
  return san.names.items.filter((n) => n.type === 'url').map((n) => n.value);
}

/** Lower-case hex SHA-256 of the DER certificate (Envoy's XFCC `Hash`, `cert inspect` fingerprint). */
export async function sha256Hex(cert: x509.X509Certificate): Promise<string> {
  const digest = await cert.getThumbprint('SHA-256');
  return Buffer.from(digest).toString('hex');
}
