// The trust bundle (`ca.bundle`) checked once at start against `trustDomain`: a bundle whose roots all name other
// trust domains can never authenticate this trust domain's CA, and the agent would retry it for ever. meshauth's
// roots name their trust domain (URI SAN `spiffe://<td>`); a root that names none says nothing, so it is let through.
// A file that cannot be read or parsed is left to the agent, which reads it at each bootstrap and says why.
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../identity/index.js';
import { certificatePemBlocks, parseCertificatesPem, uriSans } from '../pki/index.js';
import { readRegularFile } from '../platform/index.js';
import { envOrigin } from './key-path.js';

/** A trust bundle file is a few roots; the agent reads `ca.bundle` with the same bound. */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/**
 * A CA's bundle holds its current root and those of a rotation (previous, next): a few. The agent refuses more, from
 * the CA or from `ca.bundle`: it reads the file again at every renewal and refresh, on the thread that serves
 * traffic, and 1 MiB of certificates (about 1,400) took 0.7 s to parse each time.
 */
export const MAX_BUNDLE_CERTIFICATES = 32;

/**
 * The different certificates of `pem`, each block once (the first of those that differ only in whitespace), found
 * without parsing them: what is counted against MAX_BUNDLE_CERTIFICATES and then parsed, so a root given a thousand
 * times is parsed once.
 */
export function distinctCertificateBlocks(pem: string): string[] {
  const seen = new Map<string, string>();
  for (const block of certificatePemBlocks(pem)) {
    const key = block.replace(/\s+/g, '');
    if (!seen.has(key)) seen.set(key, block);
  }
  return [...seen.values()];
}

/** The advice of a refusal for too many certificates. */
export const TOO_MANY_CERTIFICATES_FIX = "give it the CA's bundle.pem, not a system CA bundle or a chain";

export interface BundleSetting {
  /** The config file (or `environment`), first in the message. */
  readonly source: string;
  readonly trustDomain: TrustDomain;
  /** The path `ca.bundle` names. */
  readonly bundleFile: string;
  /** Key path → the MESHAUTH_* variable that set it, so the message names the variable too. */
  readonly variables?: ReadonlyMap<string, string>;
}

/**
 * The trust domains the roots of `pem` are for, when every root names at least one (a URI SAN that is a trust
 * domain's own ID); undefined when a root names none. Throws as parseCertificatesPem does on what is not PEM.
 */
export function bundleTrustDomains(pem: string): string[] | undefined {
  const domains = new Set<string>();
  for (const root of parseCertificatesPem(pem)) {
    const named = uriSans(root).flatMap((uri) => {
      const id = SpiffeId.tryParse(uri);
      return id?.isTrustDomainId === true ? [id.trustDomain.name] : [];
    });
    if (named.length === 0) return undefined;
    for (const name of named) domains.add(name);
  }
  return [...domains];
}

/**
 * Throws MESHAUTH_ERR_CONFIG_INVALID when `ca.bundle` holds more than MAX_BUNDLE_CERTIFICATES certificates, or roots
 * that are all for trust domains other than `trustDomain`.
 */
export function checkBundleTrustDomain(setting: BundleSetting): void {
  const { source, trustDomain, bundleFile } = setting;
  const variables = setting.variables ?? new Map<string, string>();
  const bundleKey = `ca.bundle${envOrigin('ca.bundle', variables)}`;
  let text: string;
  try {
    text = readRegularFile(bundleFile, MAX_BUNDLE_BYTES).bytes.toString('utf8');
  } catch {
    return;
  }
  const count = distinctCertificateBlocks(text).length;
  if (count > MAX_BUNDLE_CERTIFICATES) {
    throw new MeshauthError(
      'MESHAUTH_ERR_CONFIG_INVALID',
      `${source}: ${bundleKey}: ${bundleFile} holds ${count} certificates, more than ${MAX_BUNDLE_CERTIFICATES}: ` +
        TOO_MANY_CERTIFICATES_FIX,
      { reason: 'config_invalid', detail: { file: source, key: 'ca.bundle' } },
    );
  }
  let domains: string[] | undefined;
  try {
    domains = bundleTrustDomains(text);
  } catch {
    return;
  }
  if (domains === undefined || domains.includes(trustDomain.name)) return;
  const tdKey = `trustDomain${envOrigin('trustDomain', variables)}`;
  const one = domains.length === 1;
  const theirs = domains.join(', ');
  throw new MeshauthError(
    'MESHAUTH_ERR_CONFIG_INVALID',
    `${source}: ${bundleKey}: ${bundleFile} is the trust bundle of trust domain${one ? '' : 's'} ${theirs}, but ` +
      `${tdKey} is ${trustDomain.name}: no CA of ${trustDomain.name} can be authenticated with it (set ca.bundle ` +
      `to the bundle.pem of the CA of ${trustDomain.name}, or trustDomain to ${one ? '' : 'one of '}${theirs})`,
    { reason: 'config_bundle_trust_domain', detail: { file: source, key: 'ca.bundle' } },
  );
}
