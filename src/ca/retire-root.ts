// The last step of a root rotation: the previous root leaves the trust bundle. Only once no SVID it (or its
// intermediate) signed can still be valid — every peer holding one would lose its connections (a root that leaves
// the bundle cuts them) — unless the operator forces it.
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshauthError } from '../errors/index.js';
import { BACKDATE_MS, parseCertificatesPem, toPemChain, type x509 } from '../pki/index.js';
import { caPaths, PUBLIC_FILE_MODE, writeFileAtomic } from './ca-files.js';
import { readCaFile } from './store.js';

/** The longest SVID lifetime the CA issues (`ca serve --svid-ttl` at most 24 h). */
export const SVID_MAX_LIFETIME_MS = 24 * 3_600_000;

export interface RetireResult {
  readonly action: 'root_retired';
  /** Serial of the root that left the bundle. */
  readonly serial: string;
  /** Roots left in the bundle. */
  readonly roots: number;
}

/**
 * Removes root-previous.crt from bundle.pem, deletes root-previous.key and keeps the certificate as
 * root-retired.crt. Refuses (MESHAUTH_ERR_USAGE) before the longest SVID lifetime has passed since the current
 * intermediate started signing, unless `force`.
 */
export async function retirePreviousRoot(dir: string, now = new Date(), force = false): Promise<RetireResult> {
  const paths = caPaths(dir);
  const previousCert = join(paths.dir, 'root-previous.crt');
  if (!(await exists(previousCert))) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `no previous root to retire (${previousCert} is missing): it appears after \`meshauth ca rotate --root --activate\``,
      { reason: 'no_previous_root' },
    );
  }
  const [previous] = parseCertificatesPem(await readCaFile(paths, previousCert));
  const [intermediate] = parseCertificatesPem(await readCaFile(paths, paths.intermediateCert));
  if (previous === undefined || intermediate === undefined) {
    throw inconsistent(paths.dir, 'root-previous.crt or intermediate.crt holds no certificate');
  }
  // Every SVID under the old root was issued before the current intermediate (which activation created) started.
  const safeAt = new Date(intermediate.notBefore.getTime() + BACKDATE_MS + SVID_MAX_LIFETIME_MS);
  if (!force && now < safeAt) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `SVIDs issued under the previous root may be valid until ${safeAt.toISOString()}: retire it after that, or ` +
        'pass --force (peers still holding one lose their connections and must bootstrap again)',
      { reason: 'root_still_in_use' },
    );
  }
  const bundle = parseCertificatesPem(await readCaFile(paths, paths.bundle));
  const kept = bundle.filter((root) => !sameCertificate(root, previous));
  if (kept.length === 0) {
    throw inconsistent(paths.dir, 'bundle.pem holds no root besides the previous one');
  }
  if (kept.length !== bundle.length) await writeFileAtomic(paths.bundle, toPemChain(kept), PUBLIC_FILE_MODE);
  await rm(join(paths.dir, 'root-previous.key'), { force: true });
  await rename(previousCert, join(paths.dir, 'root-retired.crt'));
  return { action: 'root_retired', serial: previous.serialNumber, roots: kept.length };
}

function inconsistent(dir: string, why: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', `CA directory ${dir} is inconsistent: ${why}`, {
    reason: 'inconsistent',
  });
}

function sameCertificate(a: x509.X509Certificate, b: x509.X509Certificate): boolean {
  return Buffer.compare(Buffer.from(a.rawData), Buffer.from(b.rawData)) === 0;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
