// X.509 name constraints for the intermediate: it may only sign SPIFFE IDs of its own trust
// domain. @peculiar/x509 has no class for this extension, so it is built and parsed with @peculiar/asn1-x509.
// OpenSSL enforces it during the TLS handshake (the URI constraint applies to the URI's host, i.e. the trust domain).
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from '@peculiar/asn1-x509';
import { MeshauthError } from '../errors/index.js';
import { x509 } from './x509.js';

export const NAME_CONSTRAINTS_OID = '2.5.29.30';

export function uriNameConstraintsExtension(permittedHosts: readonly string[]): x509.Extension {
  const permitted = new GeneralSubtrees(
    permittedHosts.map((host) => new GeneralSubtree({ base: new GeneralName({ uniformResourceIdentifier: host }) })),
  );
  const value = AsnConvert.serialize(new NameConstraints({ permittedSubtrees: permitted }));
  return new x509.Extension(NAME_CONSTRAINTS_OID, true, value);
}

/**
 * The URI hosts a certificate's name constraints permit and exclude, or undefined without the extension. `permitted`
 * is undefined when no permitted subtree is a URI: a name form is constrained only through subtrees
 * of that form (a CA constrained to DNS names may still sign SPIFFE IDs, as OpenSSL accepts in a handshake).
 */
export interface UriConstraints {
  readonly permitted: readonly string[] | undefined;
  readonly excluded: readonly string[];
}

export function uriConstraints(cert: x509.X509Certificate): UriConstraints | undefined {
  // Parsed once per certificate object: a CA validates chains through the same intermediate thousands of times.
  let cached = constraintsOf.get(cert);
  if (cached === undefined) {
    cached = { constraints: parseUriConstraints(cert) };
    constraintsOf.set(cert, cached);
  }
  return cached.constraints;
}

const constraintsOf = new WeakMap<x509.X509Certificate, { readonly constraints: UriConstraints | undefined }>();

/**
 * Throws MESHAUTH_ERR_SVID_CHAIN (reason `name_constraints`) for a subtree with a minimum other than 0 or a maximum:
 * a certificate profile has them absent, this reader would ignore them, and OpenSSL refuses a chain through such a
 * constraint (X509_V_ERR_SUBTREE_MINMAX), so chains validated outside a handshake must be refused too. OpenSSL looks
 * only at subtrees of a name form the leaf has; this refuses them in any subtree, which no CA of SVIDs writes.
 */
function parseUriConstraints(cert: x509.X509Certificate): UriConstraints | undefined {
  const extension = cert.extensions.find((e) => e.type === NAME_CONSTRAINTS_OID);
  if (extension === undefined) return undefined;
  const constraints = AsnConvert.parse(extension.value, NameConstraints);
  const hosts = (subtrees: GeneralSubtrees | undefined): string[] => {
    const found: string[] = [];
    for (const subtree of subtrees ?? []) {
      // A long INTEGER is read as a string, never the number 0: refused too.
      if (subtree.minimum !== 0 || subtree.maximum !== undefined) {
        throw new MeshauthError(
          'MESHAUTH_ERR_SVID_CHAIN',
          'issuer name constraints have a subtree with a minimum or maximum',
          { reason: 'name_constraints' },
        );
      }
      if (subtree.base.uniformResourceIdentifier !== undefined) found.push(subtree.base.uniformResourceIdentifier);
    }
    return found;
  };
  const permitted = hosts(constraints.permittedSubtrees);
  return {
    permitted: permitted.length === 0 ? undefined : Object.freeze(permitted),
    excluded: Object.freeze(hosts(constraints.excludedSubtrees)),
  };
}

/**
 * A constraint `.example.org` matches subdomains; `example.org` matches exactly that host. Host names
 * compare case-insensitively (as OpenSSL's nc_uri does); SPIFFE trust domains are lowercase already.
 */
function hostPermitted(host: string, permitted: readonly string[]): boolean {
  const name = host.toLowerCase();
  return permitted.some((constraint) => {
    const p = constraint.toLowerCase();
    return p.startsWith('.') ? name.endsWith(p) : name === p;
  });
}

/** Whether `host` passes the constraints: within a permitted subtree (if any) and in no excluded one. */
export function hostAllowed(host: string, constraints: UriConstraints): boolean {
  if (constraints.permitted !== undefined && !hostPermitted(host, constraints.permitted)) return false;
  return !hostPermitted(host, constraints.excluded);
}
