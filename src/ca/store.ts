// The CA's key material on disk: `ca init` creates it, `ca issue`/`ca serve` load it. Keys are 0600 and
// every file is replaced atomically, so a running server or another replica never reads a torn file.
import { X509Certificate as NodeX509Certificate, subtle } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, TrustDomain } from '../identity/index.js';
import {
  createIntermediateCertificate,
  createRootCertificate,
  exportPrivateKeyPem,
  generateKeyPair,
  type Issuer,
  importPrivateKeyPem,
  type KeyPair,
  parseCertificatesPem,
  TrustBundle,
  toPemChain,
  uriSans,
  type x509,
} from '../pki/index.js';
import { readCaFile as readCaDirFile } from './ca-dir-file.js';
import {
  type CaPaths,
  caPaths,
  PRIVATE_FILE_MODE,
  PUBLIC_FILE_MODE,
  renameInto,
  syncDirectory,
  writeFileAtomic,
  writeNewFile,
} from './ca-files.js';
import { claimInit, type InitHolder, initMarkerPresent } from './init-claim.js';
import { CA_CERTIFICATES, CA_PRIVATE_KEY, parsedCaFile } from './parsed-ca-file.js';
import { type LockWaitOptions, withRotationLock } from './rotation-lock.js';
import { inconsistent, readTrustDomain } from './trust-domain-file.js';

export { inconsistent, readTrustDomain };

export interface InitCaOptions {
  readonly dir: string;
  readonly trustDomain: string | TrustDomain;
  readonly force?: boolean;
  readonly now?: Date;
  /**
   * More files `ca init` writes from the new CA (the Kubernetes manifests), run once the CA's files are in place and
   * before the init counts as finished: an init stopped in it is replaced like any other half-made one.
   */
  readonly beforeFinish?: (paths: CaPaths) => Promise<void>;
  /** Told when the directory's lock (rotation-lock.ts), taken to replace its files, is held by another process. */
  readonly directoryLock?: LockWaitOptions;
}

export interface InitCaResult {
  readonly trustDomain: TrustDomain;
  readonly paths: CaPaths;
  /** When the new intermediate expires. */
  readonly intermediateNotAfter: Date;
  /** The run whose half-made CA this one replaced (it died); undefined when there was none. */
  readonly interruptedRun: InitHolder | undefined;
}

export interface CaState {
  readonly trustDomain: string;
}

/**
 * The files a CA is recognised by: one of them present and no `ca init` marker means a CA that `ca init` refuses
 * to replace without --force (a directory assembled by hand, or copied from a Secret without root.key, too).
 */
const CA_FILES = ['rootCert', 'rootKey', 'intermediateCert', 'intermediateKey'] as const;
/** What `ca serve` and `ca issue` need: without all three, nothing was ever signed from the directory. */
const SERVED_FILES = ['intermediateCert', 'intermediateKey', 'bundle'] as const;

/**
 * Creates root + intermediate, the bundle, the JWT signing key and the state file; refuses to overwrite an existing
 * CA unless forced. A CA appears whole or not at all: its files are written complete into a staging directory
 * beside them, then renamed in, under a marker (init-claim.ts) that a killed run leaves behind, so the next run
 * knows the directory for a half-made CA and replaces it without --force.
 */
export async function initCa(options: InitCaOptions): Promise<InitCaResult> {
  const trustDomain =
    typeof options.trustDomain === 'string' ? TrustDomain.parse(options.trustDomain) : options.trustDomain;
  const paths = caPaths(options.dir);
  const force = options.force === true;
  // A CA is refused before anything is written, as always; a directory with a marker goes on to the claim, which
  // tells a run still writing from one that died.
  if (!force && !initMarkerPresent(options.dir)) await refuseExistingCa(paths);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const claim = await claimInit(options.dir).catch((error: unknown) => {
    throw namedAs(error, paths.initMarker, paths.rootKey);
  });
  let touched = false;
  try {
    // The dead run may have published its whole CA and been stopped only before it removed the marker: that CA is
    // complete and may already have signed, so it is refused like any other, never replaced without --force.
    if (claim.interrupted && !force && (await publishedWhole(paths, options.beforeFinish !== undefined))) {
      await rm(paths.initStaging, { recursive: true, force: true });
      await claim.release();
      await refuseExistingCa(paths);
    }
    // Again under the claim: another run may have finished its CA since the check above.
    const existing = await firstExisting(CA_FILES.map((name) => paths[name]));
    if (existing !== undefined && !force && !claim.interrupted) await refuseExistingCa(paths);
    const { staged, intermediateNotAfter } = await stageNewCa(paths, trustDomain, options.now ?? new Date());
    // Files a `ca serve` may be rotating, or a `ca rotate` writing, are replaced under the lock they take, or a
    // rotation's certificate (under the old root) landed beside the new CA's key. A new directory has no such writer.
    const replacing = existing !== undefined || claim.interrupted;
    const publish = async () => {
      await claim.begin();
      touched = true;
      if (replacing) await removeOldCaState(paths);
      // Its own store first, so that a directory that serves is always one `ca serve` may write (server.ts).
      await mkdir(paths.usedTokens, { recursive: true, mode: 0o700 });
      for (const name of PUBLISH_ORDER) await renameInto(staged[name], paths[name]);
      await options.beforeFinish?.(paths);
      await syncDirectory(options.dir);
    };
    if (replacing) await withRotationLock(options.dir, publish, options.directoryLock);
    else await publish();
    await rm(paths.initStaging, { recursive: true, force: true });
    await claim.release();
    return {
      trustDomain,
      paths,
      intermediateNotAfter,
      interruptedRun: claim.interrupted ? claim.takenFrom : undefined,
    };
  } catch (error) {
    // Once the directory has changed, or when it was half-made already, the marker stays, begun, for the next run to
    // find; otherwise nothing happened, and none is left.
    if (touched || claim.interrupted) {
      claim.abandon();
    } else {
      await rm(paths.initStaging, { recursive: true, force: true });
      await claim.release();
    }
    throw error;
  }
}

/**
 * Whether the directory holds the whole CA a run published: no staged file left to rename in, every published file
 * in place, and the CA loads as `ca serve` loads it. With more files to write after them (`beforeFinish`, the
 * Kubernetes manifests), only a run that got as far as removing its staging directory had written them too.
 */
async function publishedWhole(paths: CaPaths, moreToWrite: boolean): Promise<boolean> {
  let left: string[] = [];
  try {
    left = await readdir(paths.initStaging);
    if (moreToWrite) return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  if (PUBLISH_ORDER.some((name) => left.includes(basename(paths[name])))) return false;
  for (const name of PUBLISH_ORDER) if ((await firstExisting([paths[name]])) === undefined) return false;
  return loadCaMaterial(paths.dir).then(
    () => true,
    () => false,
  );
}

/**
 * The order the staged files are renamed in. bundle.pem last: `ca serve` and `ca issue` need it, so no CA in the
 * making is served before all of it is in place. ca.json before the intermediate and the bundle: a running `ca serve`
 * reloads when those change, reading the trust domain from ca.json then. Written after them, a reload between the
 * bundle and ca.json (under --force with a new trust domain) kept the old one for good: the server's own certificate
 * then broke the new intermediate's name constraints, and no client could reach it until it was restarted.
 */
const PUBLISH_ORDER = [
  'jwtKey',
  'rootKey',
  'rootCert',
  'state',
  'intermediateKey',
  'intermediateCert',
  'bundle',
] as const satisfies readonly (keyof CaPaths)[];

/** The new CA written complete, fsync'd and with its final modes into the (emptied) staging directory. */
async function stageNewCa(
  paths: CaPaths,
  trustDomain: TrustDomain,
  now: Date,
): Promise<{ readonly staged: CaPaths; readonly intermediateNotAfter: Date }> {
  await rm(paths.initStaging, { recursive: true, force: true }); // a run that died left it
  await mkdir(paths.initStaging, { mode: 0o700 });
  const staged = caPaths(paths.initStaging);
  const root = await newRoot(trustDomain, now);
  const intermediate = await newIntermediate(trustDomain, root, now);
  const jwtKey = await generateKeyPair('p256'); // the JWT-SVID signing key (jwt-signing-key.ts)
  const files: Readonly<Record<(typeof PUBLISH_ORDER)[number], readonly [string, number]>> = {
    jwtKey: [await exportPrivateKeyPem(jwtKey.privateKey), PRIVATE_FILE_MODE],
    rootKey: [await exportPrivateKeyPem(root.keys.privateKey), PRIVATE_FILE_MODE],
    rootCert: [certificateText(root), PUBLIC_FILE_MODE],
    state: [stateText({ trustDomain: trustDomain.name }), PUBLIC_FILE_MODE],
    intermediateKey: [await exportPrivateKeyPem(intermediate.keys.privateKey), PRIVATE_FILE_MODE],
    intermediateCert: [certificateText(intermediate), PUBLIC_FILE_MODE],
    bundle: [toPemChain([root.certificate]), PUBLIC_FILE_MODE],
  };
  // A full disk is reported naming the file of the CA it was for, not its staging copy.
  for (const name of PUBLISH_ORDER) await writeNewFile(staged[name], ...files[name], paths[name]);
  return { staged, intermediateNotAfter: intermediate.certificate.notAfter };
}

/**
 * A replaced CA starts clean: tokens, the roots of a rotation (pending, previous with its key, retired) and the
 * retired JWT keys belong to the old one. A previous root left behind blocked the new CA's first `--root
 * --activate`, and its retired JWT keys stayed published in the new CA's /v1/jwks.
 */
async function removeOldCaState(paths: CaPaths): Promise<void> {
  await rm(paths.tokens, { recursive: true, force: true });
  for (const file of [
    paths.pendingRootCert,
    paths.pendingRootKey,
    paths.previousRootCert,
    paths.previousRootKey,
    paths.retiredRootCert,
    paths.jwtRetired,
  ]) {
    await rm(file, { force: true });
  }
}

/**
 * A directory that takes no new file fails at the marker, a name the user never gave: named by `file`, the CA's file
 * that the user knows `ca init` writes, as it was before there was a marker.
 */
function namedAs(error: unknown, internal: string, file: string): unknown {
  if ((error as NodeJS.ErrnoException | undefined)?.path === internal) Object.assign(error as object, { path: file });
  return error;
}

/** MESHAUTH_ERR_CA_EXISTS when the directory holds a CA; nothing when it holds none. */
async function refuseExistingCa(paths: CaPaths): Promise<void> {
  const existing = await firstExisting(CA_FILES.map((name) => paths[name]));
  if (existing === undefined) return;
  const missing: string[] = [];
  for (const name of SERVED_FILES) {
    if ((await firstExisting([paths[name]])) === undefined) missing.push(basename(paths[name]));
  }
  throw caExists(paths.dir, existing, missing);
}

/** A CA certificate with its key, in memory. */
export interface CaKey {
  readonly certificate: x509.X509Certificate;
  readonly keys: KeyPair;
}

/** What signing needs: the trust domain, the issuing intermediate with its key, the bundle of trusted roots. */
export interface CaMaterial {
  readonly trustDomain: TrustDomain;
  readonly issuer: Issuer;
  readonly intermediatePem: string;
  readonly bundle: TrustBundle;
  /** The root in the bundle that signed the intermediate (its expiry bounds every chain served). */
  readonly root: x509.X509Certificate;
}

/**
 * Loads the signing material and checks that it is consistent (each file parses, key matches certificate, chain to a
 * bundle root, the intermediate of the directory's trust domain).
 */
export async function loadCaMaterial(dir: string): Promise<CaMaterial> {
  const paths = caPaths(dir);
  const [certPem, keyPem, bundlePem] = await Promise.all([
    readCaFile(paths, paths.intermediateCert),
    readCaFile(paths, paths.intermediateKey),
    readCaFile(paths, paths.bundle),
  ]);
  const [intermediate] = parsedCaFile(dir, paths.intermediateCert, CA_CERTIFICATES, () =>
    parseCertificatesPem(certPem),
  );
  if (intermediate === undefined) throw inconsistent(dir, 'intermediate.crt holds no certificate');
  const keys = await parsedCaFile(dir, paths.intermediateKey, CA_PRIVATE_KEY, () => importPrivateKeyPem(keyPem));
  if (!(await keyMatchesCertificate(keys, intermediate))) {
    throw inconsistent(dir, 'intermediate.key does not belong to intermediate.crt');
  }
  const trustDomain = await readTrustDomain(paths);
  refuseOtherTrustDomain(dir, trustDomain, intermediate);
  const bundle = parsedCaFile(dir, paths.bundle, CA_CERTIFICATES, () => TrustBundle.fromPem(trustDomain, bundlePem));
  const nodeIntermediate = new NodeX509Certificate(Buffer.from(intermediate.rawData));
  const root = bundle.roots.find((candidate) => {
    const nodeRoot = new NodeX509Certificate(Buffer.from(candidate.rawData));
    return nodeIntermediate.checkIssued(nodeRoot) && nodeIntermediate.verify(nodeRoot.publicKey);
  });
  if (root === undefined) throw inconsistent(dir, 'intermediate.crt is not signed by a root in bundle.pem');
  return {
    trustDomain,
    issuer: { certificate: intermediate, privateKey: keys.privateKey, keyType: keys.type },
    intermediatePem: intermediate.toString('pem'),
    bundle,
    root,
  };
}

/**
 * The intermediate's name constraints let it sign for its own trust domain only: with another one in ca.json (a `ca
 * init --force --trust-domain` stopped between ca.json and the intermediate, a hand edit) every leaf signed would be
 * refused by every relying party while the CA counted it as issued. A signing certificate without a SPIFFE ID says
 * nothing either way.
 */
function refuseOtherTrustDomain(dir: string, trustDomain: TrustDomain, intermediate: x509.X509Certificate): void {
  for (const uri of uriSans(intermediate)) {
    const named = SpiffeId.tryParse(uri)?.trustDomain;
    if (named === undefined || named.equals(trustDomain)) continue;
    throw inconsistent(
      dir,
      `ca.json (or root.crt, when there is no ca.json) names trust domain ${trustDomain} but intermediate.crt is of ` +
        `${named} and can sign for ${named} only: finish the interrupted \`meshauth ca init --force --trust-domain ` +
        `${trustDomain}\` by running it again, or put trust domain ${named} back in ca.json`,
    );
  }
}

/** A file of the CA directory, read bounded (ca-dir-file.ts); missing means no CA there yet. */
export async function readCaFile(paths: CaPaths, file: string): Promise<string> {
  return readCaDirFile(paths, file);
}

export async function loadCaKey(paths: CaPaths, certFile: string, keyFile: string): Promise<CaKey> {
  const [certPem, keyPem] = await Promise.all([readCaFile(paths, certFile), readCaFile(paths, keyFile)]);
  const [certificate] = parsedCaFile(paths.dir, certFile, CA_CERTIFICATES, () => parseCertificatesPem(certPem));
  // Imported before the comparison: compared as text, a damaged key reached OpenSSL's decoder and ended `ca rotate`
  // with its bare "DECODER routines::unsupported", no code, exit 1.
  const keys = await parsedCaFile(paths.dir, keyFile, CA_PRIVATE_KEY, () => importPrivateKeyPem(keyPem));
  if (certificate === undefined || !(await keyMatchesCertificate(keys, certificate))) {
    throw inconsistent(paths.dir, `${keyFile} does not belong to ${certFile}`);
  }
  return { certificate, keys };
}

export async function newRoot(trustDomain: TrustDomain, now: Date): Promise<CaKey> {
  const keys = await generateKeyPair('p256');
  return { certificate: await createRootCertificate({ trustDomain, keys, now }), keys };
}

/** Generates a new intermediate under `root` and writes it (key first, then certificate: see CaAuthority). */
export async function writeIntermediateUnder(
  paths: CaPaths,
  trustDomain: TrustDomain,
  root: CaKey,
  now: Date,
  ttlMs?: number,
): Promise<CaKey> {
  const intermediate = await newIntermediate(trustDomain, root, now, ttlMs);
  await writeKeyAndCert(paths.intermediateKey, paths.intermediateCert, intermediate);
  return intermediate;
}

async function newIntermediate(trustDomain: TrustDomain, root: CaKey, now: Date, ttlMs?: number): Promise<CaKey> {
  const keys = await generateKeyPair('p256');
  const certificate = await createIntermediateCertificate({
    trustDomain,
    keys,
    issuer: { certificate: root.certificate, privateKey: root.keys.privateKey, keyType: root.keys.type },
    now,
    ...(ttlMs === undefined ? {} : { ttlMs }),
  });
  return { certificate, keys };
}

export async function writeKeyAndCert(keyFile: string, certFile: string, ca: CaKey): Promise<void> {
  await writeFileAtomic(keyFile, await exportPrivateKeyPem(ca.keys.privateKey), PRIVATE_FILE_MODE);
  await writeFileAtomic(certFile, certificateText(ca), PUBLIC_FILE_MODE);
}

function certificateText(ca: CaKey): string {
  return ca.certificate.toString('pem').concat('\n');
}

function stateText(state: CaState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

async function keyMatchesCertificate(keys: KeyPair, certificate: x509.X509Certificate): Promise<boolean> {
  const spki = Buffer.from(await subtle.exportKey('spki', keys.publicKey));
  return spki.equals(Buffer.from(certificate.publicKey.rawData));
}

async function firstExisting(files: readonly string[]): Promise<string | undefined> {
  for (const file of files) {
    if (
      await stat(file).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

/**
 * `missing`: which of the files a served CA needs are absent. Such a directory never signed anything, but without a
 * marker it is not known to be a half-made one (a root kept apart, a copy in progress): said, and left to --force.
 */
function caExists(dir: string, file: string, missing: readonly string[]): MeshauthError {
  const incomplete =
    missing.length === 0
      ? ''
      : `, without ${missing.join(', ')} (what a \`meshauth ca init\` of an earlier version stopped there leaves)`;
  return new MeshauthError(
    'MESHAUTH_ERR_CA_EXISTS',
    `a CA already exists in ${dir} (${file})${incomplete}; pass --force to replace it, which invalidates every ` +
      'certificate it issued',
    { reason: 'exists' },
  );
}
