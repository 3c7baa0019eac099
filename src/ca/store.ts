// The CA's key material on disk: `ca init` creates it, `ca issue`/`ca serve` load it. Keys are 0600 and
// every file is replaced atomically, so a running server or another replica never reads a torn file.
import { X509Certificate as NodeX509Certificate, subtle } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
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
  createFileExclusive,
  PRIVATE_FILE_MODE,
  PUBLIC_FILE_MODE,
  writeFileAtomic,
} from './ca-files.js';
import { writeNewJwtSigningKey } from './jwt-signing-key.js';
import { CA_CERTIFICATES, CA_PRIVATE_KEY, parsedCaFile } from './parsed-ca-file.js';
import { inconsistent, readTrustDomain } from './trust-domain-file.js';

export { inconsistent, readTrustDomain };

export interface InitCaOptions {
  readonly dir: string;
  readonly trustDomain: string | TrustDomain;
  readonly force?: boolean;
  readonly now?: Date;
}

export interface CaState {
  readonly trustDomain: string;
}

/** Creates root + intermediate, the bundle and the state file. Refuses to overwrite an existing CA unless forced. */
export async function initCa(options: InitCaOptions): Promise<{ trustDomain: TrustDomain; paths: CaPaths }> {
  const trustDomain =
    typeof options.trustDomain === 'string' ? TrustDomain.parse(options.trustDomain) : options.trustDomain;
  const paths = caPaths(options.dir);
  const existing = await firstExisting([paths.rootCert, paths.rootKey, paths.intermediateCert, paths.intermediateKey]);
  if (existing !== undefined && options.force !== true) throw caExists(options.dir, existing);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  if (existing !== undefined) {
    // A replaced CA starts clean: tokens, the roots of a rotation (pending, previous with its key, retired) and the
    // retired JWT keys belong to the old one. A previous root left behind blocked the new CA's first `--root
    // --activate`, and its retired JWT keys stayed published in the new CA's /v1/jwks.
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
  const now = options.now ?? new Date();
  const root = await newRoot(trustDomain, now);
  if (options.force === true) {
    await writeKeyAndCert(paths.rootKey, paths.rootCert, root);
  } else {
    // Two `ca init` at once both find the directory empty: without this claim both reported success while the later
    // one's files replaced the other's CA. root.key is created exclusively: the run that loses refuses, having
    // written nothing.
    const rootKeyPem = await exportPrivateKeyPem(root.keys.privateKey);
    if (!(await createFileExclusive(paths.rootKey, rootKeyPem, PRIVATE_FILE_MODE))) {
      throw caExists(options.dir, paths.rootKey);
    }
    await writeFileAtomic(paths.rootCert, root.certificate.toString('pem').concat('\n'), PUBLIC_FILE_MODE);
  }
  // ca.json before the intermediate and the bundle: a running `ca serve` reloads when those change, reading the trust
  // domain from ca.json then. Written last, a reload between the bundle and ca.json (under --force with a new trust
  // domain) kept the old one for good: the server's own certificate then broke the new intermediate's name
  // constraints, and no client could reach it until it was restarted.
  await writeState(paths, { trustDomain: trustDomain.name });
  await writeIntermediateUnder(paths, trustDomain, root, now);
  await writeFileAtomic(paths.bundle, toPemChain([root.certificate]), PUBLIC_FILE_MODE);
  await writeNewJwtSigningKey(options.dir);
  await mkdir(paths.usedTokens, { recursive: true, mode: 0o700 });
  return { trustDomain, paths };
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
  const keys = await generateKeyPair('p256');
  const certificate = await createIntermediateCertificate({
    trustDomain,
    keys,
    issuer: { certificate: root.certificate, privateKey: root.keys.privateKey, keyType: root.keys.type },
    now,
    ...(ttlMs === undefined ? {} : { ttlMs }),
  });
  const intermediate = { certificate, keys };
  await writeKeyAndCert(paths.intermediateKey, paths.intermediateCert, intermediate);
  return intermediate;
}

export async function writeKeyAndCert(keyFile: string, certFile: string, ca: CaKey): Promise<void> {
  await writeFileAtomic(keyFile, await exportPrivateKeyPem(ca.keys.privateKey), PRIVATE_FILE_MODE);
  await writeFileAtomic(certFile, ca.certificate.toString('pem').concat('\n'), PUBLIC_FILE_MODE);
}

export async function writeState(paths: CaPaths, state: CaState): Promise<void> {
  await writeFileAtomic(paths.state, `${JSON.stringify(state, null, 2)}\n`, PUBLIC_FILE_MODE);
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

function caExists(dir: string, file: string): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_CA_EXISTS',
    `a CA already exists in ${dir} (${file}); pass --force to replace it, which invalidates every certificate it issued`,
    { reason: 'exists' },
  );
}
