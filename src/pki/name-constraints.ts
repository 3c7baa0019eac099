// X.509 name constraints (RFC 5280 §4.2.1.10) for the intermediate: it may only sign SPIFFE IDs of its own trust
// domain. @peculiar/x509 has no class for this extension, so it is built and parsed with @peculiar/asn1-x509.
// OpenSSL enforces it during the TLS handshake (the URI constraint applies to the URI's host, i.e. the trust domain).
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from '@peculiar/asn1-x509';
import { x509 } from './x509.js';

export const NAME_CONSTRAINTS_OID = '2.5.29.30';

export function uriNameConstraintsExtension(permittedHosts: readonly string[]): x509.Extension {
  const permitted = new GeneralSubtrees(
    permittedHosts.map((host) => new GeneralSubtree({ base: new GeneralName({ uniformResourceIdentifier: host }) })),
  );
  const value = AsnConvert.serialize(new NameConstraints({ permittedSubtrees: permitted }));
  return new x509.Extension(NAME_CONSTRAINTS_OID, true, value);
}

/** Permitted URI hosts of a name-constraints extension, or undefined when the certificate has none. */
export function permittedUriHosts(cert: x509.X509Certificate): string[] | undefined {
  // Parsed once per certificate object: a CA validates chains through the same intermediate thousands of times.
  let cached = permittedHosts.get(cert);
  if (cached === undefined) {
    cached = { hosts: parsePermittedUriHosts(cert) };
    permittedHosts.set(cert, cached);
  }
  return cached.hosts === undefined ? undefined : [...cached.hosts];
}

const permittedHosts = new WeakMap<x509.X509Certificate, { readonly hosts: readonly string[] | undefined }>();

function parsePermittedUriHosts(cert: x509.X509Certificate): string[] | undefined {
  const extension = cert.extensions.find((e) => e.type === NAME_CONSTRAINTS_OID);
  if (extension === undefined) return undefined;
  const constraints = AsnConvert.parse(extension.value, NameConstraints);
  const hosts: string[] = [];
  for (const subtree of constraints.permittedSubtrees ?? []) {
    if (subtree.base.uniformResourceIdentifier !== undefined) hosts.push(subtree.base.uniformResourceIdentifier);
  }
  return hosts;
}

/** RFC 5280: a constraint `.example.org` permits subdomains; `example.org` permits exactly that host. */
export function hostPermitted(host: string, permitted: readonly string[]): boolean {
  return permitted.some((p) => (p.startsWith('.') ? host.endsWith(p) : host === p));
}
