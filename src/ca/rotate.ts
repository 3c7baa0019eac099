// CA rotation. Intermediate: a new one under the active root signs new SVIDs at once; old leaves stay
// valid because the root is unchanged. Root, in two steps: `--root` publishes a new root in bundle.pem beside the
// old one (nothing signs with it yet, so every peer learns it first); `--root --activate` then signs a new
// intermediate with it and makes it the active root. The old root stays in the bundle until `--root --retire`
// removes it, once no SVID under it can still be valid (every peer holding one would lose its connections: a root
// that leaves the bundle cuts them), unless the operator forces it.
import { rename, rm, stat } from 'node:fs/promises';
import { MeshauthError } from '../errors/index.js';
import { BACKDATE_MS, parseCertificatesPem, SVID_MAX_TTL_MS, toPemChain, type x509 } from '../pki/index.js';
import { caPaths, PUBLIC_FILE_MODE, writeFileAtomic } from './ca-files.js';
import { CA_CERTIFICATES, parsedCaFile } from './parsed-ca-file.js';
import {
  inconsistent,
  loadCaKey,
  newRoot,
  readCaFile,
  readTrustDomain,
  writeIntermediateUnder,
  writeKeyAndCert,
} from './store.js';

export interface RotateResult {
  readonly action: 'intermediate' | 'root_published' | 'root_activated' | 'root_retired';
  readonly serial: string;
  readonly roots: number;
  /** root_activated: when the root was published (`--root`), for the warning about activating too soon. */
  readonly publishedAt?: Date;
}

/** A new intermediate under the active root; `ttlMs` defaults to INTERMEDIATE_TTL_MS (clamped to the root). */
export async function rotateIntermediate(dir: string, now = new Date(), ttlMs?: number): Promise<RotateResult> {
  const paths = caPaths(dir);
  const trustDomain = await readTrustDomain(paths);
  const root = await loadCaKey(paths, paths.rootCert, paths.rootKey);
  const intermediate = await writeIntermediateUnder(paths, trustDomain, root, now, ttlMs);
  return {
    action: 'intermediate',
    serial: intermediate.certificate.serialNumber,
    roots: (await readBundle(paths)).length,
  };
}

/** Step 1: a new root, published in the bundle next to the old one. */
export async function publishNextRoot(dir: string, now = new Date()): Promise<RotateResult> {
  const paths = caPaths(dir);
  if (await exists(paths.pendingRootCert)) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `a new root is already published (${paths.pendingRootCert}); activate it with \`meshauth ca rotate --root --activate\``,
      { reason: 'root_pending' },
    );
  }
  const trustDomain = await readTrustDomain(paths);
  const next = await newRoot(trustDomain, now);
  await writeKeyAndCert(paths.pendingRootKey, paths.pendingRootCert, next);
  const bundle = await readBundle(paths);
  await writeFileAtomic(paths.bundle, toPemChain([...bundle, next.certificate]), PUBLIC_FILE_MODE);
  return { action: 'root_published', serial: next.certificate.serialNumber, roots: bundle.length + 1 };
}

/** Step 2: the published root becomes the active root, with a new intermediate under it. */
export async function activateNextRoot(dir: string, now = new Date()): Promise<RotateResult> {
  const paths = caPaths(dir);
  if (!(await exists(paths.pendingRootCert))) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      'no new root is published yet: run `meshauth ca rotate --root` first, and activate once every peer has the new bundle',
      { reason: 'no_pending_root' },
    );
  }
  // root-previous.* holds the root an earlier activation replaced, in bundle.pem until --retire removes it. A second
  // activation would overwrite it with the root replaced now: the older root would stay trusted for good, with
  // nothing left for --retire to find it by.
  if (await exists(paths.previousRootCert)) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `the previous root (${paths.previousRootCert}) is not retired yet: run \`meshauth ca rotate --root --retire\` first`,
      { reason: 'previous_root_not_retired' },
    );
  }
  const trustDomain = await readTrustDomain(paths);
  const publishedAt = (await stat(paths.pendingRootCert)).mtime;
  const next = await loadCaKey(paths, paths.pendingRootCert, paths.pendingRootKey);
  const bundle = await readBundle(paths);
  const published = bundle.some((root) => sameCertificate(root, next.certificate));
  if (!published) {
    await writeFileAtomic(paths.bundle, toPemChain([...bundle, next.certificate]), PUBLIC_FILE_MODE);
  }
  // The intermediate first: a running server switches to it as soon as it sees a consistent pair.
  await writeIntermediateUnder(paths, trustDomain, next, now);
  await rename(paths.rootCert, paths.previousRootCert);
  await rm(paths.previousRootKey, { force: true });
  await rename(paths.rootKey, paths.previousRootKey);
  await rename(paths.pendingRootKey, paths.rootKey);
  await rename(paths.pendingRootCert, paths.rootCert);
  return {
    action: 'root_activated',
    serial: next.certificate.serialNumber,
    roots: published ? bundle.length : bundle.length + 1,
    publishedAt,
  };
}

/**
 * Step 3: root-previous.crt leaves bundle.pem, root-previous.key is deleted and the certificate kept as
 * root-retired.crt. Refused (MESHAUTH_ERR_USAGE) before the longest SVID lifetime has passed since the current
 * intermediate started signing, unless `force`.
 */
export async function retirePreviousRoot(dir: string, now = new Date(), force = false): Promise<RotateResult> {
  const paths = caPaths(dir);
  if (!(await exists(paths.previousRootCert))) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `no previous root to retire (${paths.previousRootCert} is missing): it appears after \`meshauth ca rotate --root --activate\``,
      { reason: 'no_previous_root' },
    );
  }
  const previousPem = await readCaFile(paths, paths.previousRootCert);
  const intermediatePem = await readCaFile(paths, paths.intermediateCert);
  const [previous] = parsedCaFile(paths.dir, paths.previousRootCert, CA_CERTIFICATES, () =>
    parseCertificatesPem(previousPem),
  );
  const [intermediate] = parsedCaFile(paths.dir, paths.intermediateCert, CA_CERTIFICATES, () =>
    parseCertificatesPem(intermediatePem),
  );
  if (previous === undefined || intermediate === undefined) {
    throw inconsistent(paths.dir, 'root-previous.crt or intermediate.crt holds no certificate');
  }
  // Every SVID under the old root was issued before the current intermediate (which activation created) started, on
  // a CA serving this directory. Replicas fed by a Secret sign under the old root until the manifest is applied and
  // synced, which no file here records: the refusal says to count from then.
  const safeAt = new Date(intermediate.notBefore.getTime() + BACKDATE_MS + SVID_MAX_TTL_MS);
  if (!force && now < safeAt) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `SVIDs issued under the previous root may be valid until ${safeAt.toISOString()}: retire it after that, or ` +
        'pass --force (peers still holding one lose their connections and must bootstrap again). That time counts ' +
        'from `--root --activate`; with --k8s-secret, count 24 h from when every replica loaded the applied Secret',
      { reason: 'root_still_in_use' },
    );
  }
  const bundle = await readBundle(paths);
  const kept = bundle.filter((root) => !sameCertificate(root, previous));
  if (kept.length === 0) throw inconsistent(paths.dir, 'bundle.pem holds no root besides the previous one');
  if (kept.length !== bundle.length) await writeFileAtomic(paths.bundle, toPemChain(kept), PUBLIC_FILE_MODE);
  await rm(paths.previousRootKey, { force: true });
  await rename(paths.previousRootCert, paths.retiredRootCert);
  return { action: 'root_retired', serial: previous.serialNumber, roots: kept.length };
}

async function readBundle(paths: ReturnType<typeof caPaths>): Promise<x509.X509Certificate[]> {
  const pem = await readCaFile(paths, paths.bundle);
  return parsedCaFile(paths.dir, paths.bundle, CA_CERTIFICATES, () => parseCertificatesPem(pem));
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
