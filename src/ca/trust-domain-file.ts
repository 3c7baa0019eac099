// The CA directory's trust domain, read without loading the certificate code unless the directory has no ca.json:
// `ca token create` needs nothing more, and loading @peculiar/x509 with its ASN.1 schemas was most of its start.
import { MeshauthError } from '../errors/index.js';
import { TrustDomain } from '../identity/index.js';
import { readCaFile, readCaFileIfPresent } from './ca-dir-file.js';
import type { CaPaths } from './ca-files.js';
import { CA_CERTIFICATES, parsedCaFile } from './parsed-ca-file.js';

export async function readTrustDomain(paths: CaPaths): Promise<TrustDomain> {
  // Unreadable (or not a file) as missing, as before: the root names the trust domain too.
  const stateText = readStateText(paths);
  if (stateText !== undefined) {
    const state = parseState(stateText);
    // A file edited by hand into something else must say so, not end the command with JSON.parse's bare message.
    if (state === undefined) throw inconsistent(paths.dir, 'ca.json is not a JSON object');
    if (typeof state.trustDomain === 'string') return TrustDomain.parse(state.trustDomain);
  }
  // A CA directory assembled by hand (no ca.json): the root names its trust domain in its URI SAN.
  const { parseCertificatesPem, uriSans } = await import('../pki/index.js');
  const rootPem = await readCaFile(paths, paths.rootCert);
  const [root] = parsedCaFile(paths.dir, paths.rootCert, CA_CERTIFICATES, () => parseCertificatesPem(rootPem));
  const uri = root === undefined ? undefined : uriSans(root)[0];
  if (uri === undefined) throw inconsistent(paths.dir, 'ca.json is missing and root.crt names no trust domain');
  return TrustDomain.parse(uri);
}

function readStateText(paths: CaPaths): string | undefined {
  try {
    return readCaFileIfPresent(paths.state);
  } catch {
    return undefined;
  }
}

function parseState(text: string): { readonly trustDomain?: unknown } | undefined {
  let state: unknown;
  try {
    state = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof state === 'object' && state !== null && !Array.isArray(state) ? state : undefined;
}

/** MESHAUTH_ERR_CA_UNAVAILABLE (`inconsistent`): the CA directory's files do not fit together. */
export function inconsistent(dir: string, why: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', `CA directory ${dir} is inconsistent: ${why}`, {
    reason: 'inconsistent',
  });
}
