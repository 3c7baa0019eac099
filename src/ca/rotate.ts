// CA rotation (SPEC §4). Intermediate: a new one under the active root signs new SVIDs at once; old leaves stay
// valid because the root is unchanged. Root, in two steps: `--root` publishes a new root in bundle.pem beside the
// old one (nothing signs with it yet, so every peer learns it first); `--root --activate` then signs a new
// intermediate with it and makes it the active root. The old root stays in the bundle until the operator retires it.
import { rename, rm, stat } from 'node:fs/promises';
import { MeshauthError } from '../errors/index.js';
import { parseCertificatesPem, toPemChain, type x509 } from '../pki/index.js';
import { caPaths, PUBLIC_FILE_MODE, writeFileAtomic } from './ca-files.js';
import { loadCaKey, newRoot, readCaFile, readTrustDomain, writeIntermediateUnder, writeKeyAndCert } from './store.js';

export interface RotateResult {
  readonly action: 'intermediate' | 'root_published' | 'root_activated';
  readonly serial: string;
  readonly roots: number;
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
  const trustDomain = await readTrustDomain(paths);
  const next = await loadCaKey(paths, paths.pendingRootCert, paths.pendingRootKey);
  const bundle = await readBundle(paths);
  const published = bundle.some((root) => sameCertificate(root, next.certificate));
  if (!published) {
    await writeFileAtomic(paths.bundle, toPemChain([...bundle, next.certificate]), PUBLIC_FILE_MODE);
  }
  // The intermediate first: a running server switches to it as soon as it sees a consistent pair.
  await writeIntermediateUnder(paths, trustDomain, next, now);
  await rename(paths.rootCert, `${paths.dir}/root-previous.crt`);
  await rm(`${paths.dir}/root-previous.key`, { force: true });
  await rename(paths.rootKey, `${paths.dir}/root-previous.key`);
  await rename(paths.pendingRootKey, paths.rootKey);
  await rename(paths.pendingRootCert, paths.rootCert);
  return {
    action: 'root_activated',
    serial: next.certificate.serialNumber,
    roots: published ? bundle.length : bundle.length + 1,
  };
}

async function readBundle(paths: ReturnType<typeof caPaths>): Promise<x509.X509Certificate[]> {
  return parseCertificatesPem(await readCaFile(paths, paths.bundle));
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
