// `meshauth cert …`: inspect a certificate file, request/renew an SVID from a running CA for workloads without a
// sidecar, and get a JWT-SVID for calling outside the mesh. Keys are generated here, fresh on every
// request and renewal. The CA is reached through the agent's CA client, the only one (it pins the CA's SPIFFE ID).
import { subtle } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { type CaConnection, requestJwtSvid, requestSvid } from '../agent/ca-client.js';
import { readTokenFile } from '../agent/credential-files.js';
import { acceptSvidResponse } from '../agent/svid-response.js';
import { readSettingFile } from '../config/index.js';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, TrustDomain } from '../identity/index.js';
import {
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  importSpki,
  KEY_TYPES,
  type KeyPair,
  type KeyType,
  keyTypeOf,
  parseCertificatesPem,
  parseKeyType,
  sha256Hex,
  TrustBundle,
  uriSans,
  validateX509Svid,
  type x509,
} from '../pki/index.js';
import { caRefusal } from './ca-refusal.js';
import { checkTrustedByBundle } from './cert-trust.js';
import { assertCertificateValid, type CertificateUse } from './cert-validity.js';
import { humanDuration } from './human-duration.js';
import { makeKeyDirectory, replaceFiles } from './key-pair-files.js';
import { sayWaiting, withKeyPairLock } from './key-pair-lock.js';
import { checkOutPrefix, writeAtOutPrefix } from './out-prefix.js';
import { assertCanWriteBeside } from './writable-directory.js';

export function registerCertCommands(program: Command): void {
  const cert = program.command('cert').description('inspect, request and renew certificates');

  cert
    .command('inspect <file>')
    .description('print subject, SPIFFE ID, issuer, validity, time left, key type and SHA-256 fingerprint')
    .option('--json', 'print JSON instead of text')
    .action(async (file: string, opts: { json?: boolean }) => {
      const certificates = certificatesOf(file, await readText(file, 'cert inspect', 'certificate file'));
      const now = new Date();
      const described = await Promise.all(certificates.map((c) => describe(c, now)));
      if (opts.json === true) {
        process.stdout.write(`${JSON.stringify({ file, certificates: described }, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        formatLeaf(described[0] as CertificateSummary, certificates[0] as x509.X509Certificate, now),
      );
      // A bundle (every certificate its own issuer) lists roots side by side, not a chain leading to one.
      const label = certificates.every((c) => c.subject === c.issuer) ? 'root' : 'chain';
      for (const [index, other] of described.slice(1).entries()) {
        process.stdout.write(
          `${label}[${index + 1}]: ${terminalSafe(other.subject)} (issuer ${terminalSafe(other.issuer)}; ${other.keyType}; ${other.expired ? 'expired' : `${other.timeLeft} left`}; sha256 ${other.sha256})\n`,
        );
      }
    });

  cert
    .command('request')
    .description('get an SVID from a running CA with a join token (identity comes from the token)')
    .requiredOption('--ca-url <url>', 'CA URL, e.g. https://127.0.0.1:8443')
    .requiredOption('--bundle <file>', "the CA's bundle.pem: the CA server is verified against it")
    .option('--token-file <file>', 'file holding the one-time join token (`meshauth ca token create … > FILE`)')
    .option(
      '--token <token>',
      'the join token itself: other local users see it in ps while this runs; prefer --token-file',
    )
    .requiredOption('--out <prefix>', 'writes PREFIX.crt (leaf + intermediate) and PREFIX.key')
    .option('--key-type <type>', `key type: ${KEY_TYPES.join(', ')}`, 'p256')
    .action(
      async (opts: {
        caUrl: string;
        bundle: string;
        token?: string;
        tokenFile?: string;
        out: string;
        keyType: string;
      }) => {
        const token = await joinToken(opts);
        const bundlePem = await readBundle(opts.bundle);
        const prefix = checkOutPrefix(opts.out);
        const keyType = parseKeyType(opts.keyType);
        // The token is single-use: --out is made, locked and proved writable before the CA sees it, so a directory
        // that refuses the pair costs nothing, and a second run for the same --out waits here, before spending its
        // own token. A failed request leaves no directory it made behind (writeAtOutPrefix).
        const written = await writeAtOutPrefix(prefix, async (lock) => {
          await assertCanWriteBeside([`${prefix}.key`, `${prefix}.crt`]);
          return fetchAndWrite({
            caUrl: opts.caUrl,
            bundlePem,
            bundleFile: opts.bundle,
            keyType,
            prefix,
            token,
            guardWrite: async (write) => {
              await lock.assertHeld();
              await write();
            },
          });
        });
        process.stdout.write(`${written}\n`);
      },
    );

  cert
    .command('renew')
    .description('renew an SVID in place over mTLS with the current certificate (new key every time)')
    .requiredOption('--ca-url <url>', 'CA URL, e.g. https://127.0.0.1:8443')
    .requiredOption('--bundle <file>', "the CA's bundle.pem")
    .requiredOption('--cert <file>', 'current chain, PREFIX.crt (replaced)')
    .requiredOption('--key <file>', 'current key, PREFIX.key (replaced)')
    .option('--key-type <type>', `key type of the new key (default: same as the current one)`)
    .action(async (opts: { caUrl: string; bundle: string; cert: string; key: string; keyType?: string }) => {
      const bundlePem = await readBundle(opts.bundle);
      // The pair is read under its lock: read before it, it may be the half-written pair of a run this one waits for.
      const written = await withKeyPairLock(
        opts.key,
        async (lock) => {
          const [certPem, keyPem] = await readPair(opts);
          const current = await checkKeyPair(opts, certPem, keyPem);
          const notUnderBundle = assertUsable(opts, certPem, bundlePem, 'renew');
          await refuseOneFileTwoNames(opts);
          // Before the CA issues a certificate this run could not store.
          await assertCanWriteBeside([opts.key, opts.cert]);
          return fetchAndWrite({
            caUrl: opts.caUrl,
            bundlePem,
            bundleFile: opts.bundle,
            keyType: opts.keyType === undefined ? current.type : parseKeyType(opts.keyType),
            certFile: opts.cert,
            keyFile: opts.key,
            clientCertPem: certPem,
            clientKeyPem: keyPem,
            ...(notUnderBundle === undefined ? {} : { notUnderBundle }),
            expectedId: SpiffeId.parse(uriSans(leafOf(opts.cert, certPem))[0] ?? ''),
            guardWrite: async (write) => {
              await lock.assertHeld();
              await write();
            },
          });
        },
        { onWait: sayWaiting(opts.key) },
      );
      process.stdout.write(`${written}\n`);
    });

  cert
    .command('token')
    .description('get a JWT-SVID for --audience over mTLS with an SVID and print only the token (TOKEN=$(…))')
    .requiredOption('--ca-url <url>', 'CA URL, e.g. https://127.0.0.1:8443')
    .requiredOption('--bundle <file>', "the CA's bundle.pem")
    .requiredOption('--cert <file>', 'current SVID chain, PREFIX.crt')
    .requiredOption('--key <file>', 'its key, PREFIX.key')
    .requiredOption('--audience <aud>', 'the service the token is for (its aud), e.g. https://api.example.com')
    .action(async (opts: { caUrl: string; bundle: string; cert: string; key: string; audience: string }) => {
      const bundlePem = await readBundle(opts.bundle);
      // Under the pair's lock, only while reading: a renewal between its two renames would look like a torn pair.
      const [certPem, keyPem] = await withKeyPairLock(opts.key, () => readPair(opts), { onWait: sayWaiting(opts.key) });
      await checkKeyPair(opts, certPem, keyPem);
      const notUnderBundle = assertUsable(opts, certPem, bundlePem, 'token');
      const response = await requestJwtSvid(
        { ...connectionTo(opts.caUrl, bundlePem, opts.bundle), clientCertPem: certPem, clientKeyPem: keyPem },
        { audience: opts.audience },
      ).catch((error: unknown) => {
        throw caRefusal(error, {
          joinToken: false,
          clientCert: { cert: opts.cert, bundle: opts.bundle },
          ...(notUnderBundle === undefined ? {} : { notUnderBundle }),
        });
      });
      process.stdout.write(`${response.accessToken}\n`);
    });
}

/**
 * The join token of `cert request`: from --token-file (read like the sidecar's ca.token: a bounded regular file,
 * trimmed, never quoted in a message), or from --token. A token on the command line is readable by every local user
 * in /proc/<pid>/cmdline (ps) for as long as the request runs, and one who redeems it first gets the SVID: the file is
 * the way that keeps it private, as --p12-password-file is for `ca issue`.
 */
async function joinToken(opts: { token?: string; tokenFile?: string }): Promise<string> {
  if ((opts.token === undefined) === (opts.tokenFile === undefined)) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      'give the join token with --token-file FILE (or --token), exactly one',
      {
        reason: 'usage',
      },
    );
  }
  return opts.tokenFile === undefined ? (opts.token as string) : readTokenFile(opts.tokenFile, '--token-file');
}

/**
 * --key must be the key of the leaf in --cert. Checked here: a key of another certificate (two files mixed up, or a
 * pair torn by a writer killed between its two renames) went to the CA, whose TLS handshake failed on it, and was
 * reported as the CA being unavailable (exit 1). The public key is the imported private key's: Node's
 * createPublicKey of the --key text takes the certificate's key when the text holds one (a combined file), so a torn
 * combined file passed.
 */
async function checkKeyPair(files: { cert: string; key: string }, certPem: string, keyPem: string): Promise<KeyPair> {
  const keys = await importPrivateKeyPem(keyPem).catch((error: unknown) => naming(files.key, error));
  const [leaf] = certificatesOf(files.cert, certPem);
  const spki = Buffer.from(await subtle.exportKey('spki', keys.publicKey));
  if (leaf === undefined || !spki.equals(Buffer.from(leaf.publicKey.rawData))) {
    const pair =
      resolve(files.cert) === resolve(files.key)
        ? `the key in ${files.key} does not belong to the certificate in it`
        : `--key ${files.key} does not belong to the certificate in --cert ${files.cert}`;
    throw new MeshauthError(
      'MESHAUTH_ERR_KEY_MISMATCH',
      `${pair}, so this pair cannot authenticate to the CA (a write of one file was cut short, or two files were ` +
        'mixed up): give the matching files, or get a new SVID with `meshauth cert request` (a new join token) or ' +
        '`meshauth ca issue`',
      { reason: 'key_mismatch' },
    );
  }
  return keys;
}

/**
 * `cert renew` with --cert and --key naming one combined file by two paths (a symlink or a hard link to it) would
 * replace each path with its own part: the file the consumer reads would lose its key. The same path twice renews a
 * combined file in place (writeKeyAndChain).
 */
async function refuseOneFileTwoNames(files: { cert: string; key: string }): Promise<void> {
  if (resolve(files.cert) === resolve(files.key)) return;
  const [cert, key] = await Promise.all([stat(files.cert), stat(files.key)]).catch(() => []);
  if (cert !== undefined && key !== undefined && cert.dev === key.dev && cert.ino === key.ino) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `--cert ${files.cert} and --key ${files.key} are one file by two names: give the same path to both to renew a combined key and chain in place`,
      { reason: 'usage' },
    );
  }
}

/**
 * The certificate `cert renew` or `cert token` authenticates with, checked as the CA will check it: in its validity
 * window (the clocks), then an SVID of the bundle's trust domain under its roots (the right CA). Each refusal says
 * what to do; the CA's own says "credential rejected" and nothing more. Returns, for caRefusal, why a certificate
 * under none of the bundle's roots would be refused: the CA may trust its root all the same (checkTrustedByBundle).
 */
function assertUsable(
  files: { cert: string; bundle: string },
  certPem: string,
  bundlePem: string,
  use: CertificateUse,
): MeshauthError | undefined {
  const now = new Date();
  const chain = certificatesOf(files.cert, certPem);
  assertCertificateValid(files.cert, chain[0] as x509.X509Certificate, now, use);
  return checkTrustedByBundle(files, chain, TrustBundle.fromPem(bundleTrustDomain(bundlePem), bundlePem), now, use);
}

/** The CA is pinned to spiffe://<td>/meshauth/ca, with <td> named by the bundle's roots (meshauth roots carry it). */
function connectionTo(caUrl: string, bundlePem: string, bundleFile: string): CaConnection {
  return { caUrl, bundlePem, bundleFile, trustDomain: bundleTrustDomain(bundlePem) };
}

/** The trust domain the first root of the bundle names in its URI SAN. */
function bundleTrustDomain(bundlePem: string): TrustDomain {
  const named = parseCertificatesPem(bundlePem)
    .map((root) => uriSans(root)[0])
    .find((uri) => uri !== undefined);
  if (named === undefined) {
    throw new MeshauthError(
      'MESHAUTH_ERR_CONFIG_INVALID',
      'the --bundle roots name no trust domain (URI SAN): give the bundle.pem of a meshauth CA',
      { reason: 'bundle_without_trust_domain' },
    );
  }
  return TrustDomain.parse(named);
}

interface FetchOptions {
  readonly caUrl: string;
  readonly bundlePem: string;
  /** The --bundle file bundlePem was read from, named when the CA does not chain to it. */
  readonly bundleFile: string;
  readonly keyType: KeyType;
  readonly prefix?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly token?: string;
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
  /** On renewal: why the CA would refuse clientCertPem, which leads to none of the bundle's roots (caRefusal). */
  readonly notUnderBundle?: MeshauthError;
  /** On renewal: the SPIFFE ID of the current certificate, which the new one must carry. */
  readonly expectedId?: SpiffeId;
  /** Runs the write of the new pair, checking first that the pair's lock (taken before the CA call) is still held. */
  readonly guardWrite: (write: () => Promise<void>) => Promise<void>;
}

/** New key → CSR → CA → check the answer → write key then chain, each atomically. */
async function fetchAndWrite(options: FetchOptions): Promise<string> {
  const keys = await generateKeyPair(options.keyType);
  const connection: CaConnection = {
    ...connectionTo(options.caUrl, options.bundlePem, options.bundleFile),
    ...(options.clientCertPem === undefined ? {} : { clientCertPem: options.clientCertPem }),
    ...(options.clientKeyPem === undefined ? {} : { clientKeyPem: options.clientKeyPem }),
  };
  const response = await requestSvid(connection, {
    csrPem: await createCsrPem(keys),
    ...(options.token === undefined ? {} : { token: options.token }),
  }).catch((error: unknown) => {
    throw caRefusal(error, {
      joinToken: options.token !== undefined,
      ...(options.clientCertPem === undefined || options.certFile === undefined
        ? {}
        : { clientCert: { cert: options.certFile, bundle: options.bundleFile } }),
      ...(options.notUnderBundle === undefined ? {} : { notUnderBundle: options.notUnderBundle }),
    });
  });
  const privateKeyPem = await exportPrivateKeyPem(keys.privateKey);
  const now = new Date();
  // The agent's own checks (trust domain pinned by the bundle, our key, the same ID on renewal), then the chain
  // against the local --bundle too: never write what we cannot use.
  const { svid } = acceptSvidResponse(response, {
    trustDomain: connection.trustDomain,
    publicKey: keys.publicKey,
    privateKeyPem,
    keyType: options.keyType,
    now,
    ...(options.expectedId === undefined ? {} : { expectedId: options.expectedId }),
  });
  validateX509Svid(svid.certificates, TrustBundle.fromPem(connection.trustDomain, options.bundlePem), now);
  const id = svid.id;
  const leaf = svid.leaf;
  const chainPem = svid.certChainPem;
  const certFile = options.certFile ?? `${options.prefix}.crt`;
  const keyFile = options.keyFile ?? `${options.prefix}.key`;
  await options.guardWrite(() => writeKeyAndChain(keyFile, certFile, privateKeyPem, chainPem));
  const files = resolve(certFile) === resolve(keyFile) ? certFile : `${certFile}, ${keyFile}`;
  return `issued ${id} (${options.keyType}, ${expiryText(svid.notAfter, leaf.notAfter)}): ${files}`;
}

/**
 * When the new SVID stops working: peers refuse the chain once a certificate above the leaf expires, so a leaf that
 * outlives its intermediate is usable until the intermediate's end (the agent renews before it), not its own.
 */
export function expiryText(usableUntil: Date, leafNotAfter: Date): string {
  if (usableUntil.getTime() >= leafNotAfter.getTime()) return `expires ${leafNotAfter.toISOString()}`;
  return `expires ${usableUntil.toISOString()} with the certificate above it; the leaf alone says ${leafNotAfter.toISOString()}`;
}

/**
 * Writes the new key and chain in place of the files there. Both are staged before either is replaced: the old pair
 * stays usable (for a retry of `cert renew`, which authenticates with it) when one of them cannot be written. Files
 * replaced keep their owner, group and mode where only the directory's owner can write (key-pair-files.ts); new ones
 * are the key 0600 and the chain 0644.
 *
 * One path for both (`cert renew --cert web.pem --key web.pem`) is a combined file, as haproxy's `crt`, ghostunnel's
 * `--keystore` and stunnel's `cert` take: it gets the chain then the key, in one rename, so a reader of that file never
 * sees a key and a chain from two renewals. Writing it as two files used to leave only the chain there (the key,
 * written first, was replaced by it), with success reported.
 */
export async function writeKeyAndChain(
  keyFile: string,
  certFile: string,
  privateKeyPem: string,
  chainPem: string,
): Promise<void> {
  await makeKeyDirectory(dirname(certFile));
  if (resolve(keyFile) === resolve(certFile)) {
    await replaceFiles([{ path: certFile, data: `${chainPem.trimEnd()}\n${privateKeyPem}`, mode: 0o600 }]);
    return;
  }
  await replaceFiles([
    { path: keyFile, data: privateKeyPem, mode: 0o600 },
    { path: certFile, data: chainPem, mode: 0o644 },
  ]);
}

interface CertificateSummary {
  readonly subject: string;
  readonly spiffeId: string | null;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** `1h 59m`, or `expired`: a value for JSON readers (the text output adds "left" where it reads as a sentence). */
  readonly timeLeft: string;
  /** Whole seconds until NotAfter, negative once expired: what a script compares. */
  readonly secondsLeft: number;
  readonly expired: boolean;
  readonly keyType: string;
  readonly sha256: string;
}

async function describe(cert: x509.X509Certificate, now: Date): Promise<CertificateSummary> {
  const uris = uriSans(cert);
  const leftMs = cert.notAfter.getTime() - now.getTime();
  return {
    subject: cert.subject === '' ? '(empty)' : cert.subject,
    spiffeId: uris.length === 1 ? (SpiffeId.tryParse(uris[0] as string)?.toString() ?? null) : null,
    issuer: cert.issuer,
    serial: cert.serialNumber,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    timeLeft: leftMs > 0 ? timeLeft(cert, now) : 'expired',
    secondsLeft: Math.floor(leftMs / 1000),
    expired: leftMs <= 0,
    keyType: keyTypeName(cert),
    sha256: await sha256Hex(cert),
  };
}

/** `59m 58s`: the time from `now` to the certificate's NotAfter, for a certificate that has not expired. */
function timeLeft(cert: x509.X509Certificate, now: Date): string {
  return humanDuration(cert.notAfter.getTime() - now.getTime());
}

function keyTypeName(cert: x509.X509Certificate): string {
  let key: ReturnType<typeof importSpki>;
  try {
    // importSpki refuses the keys Node 20 aborts the process on when their details are read (an EC point at infinity).
    key = importSpki(Buffer.from(cert.publicKey.rawData));
  } catch {
    return 'invalid';
  }
  try {
    return keyTypeOf(key);
  } catch {
    return key.asymmetricKeyType ?? 'unknown';
  }
}

/**
 * Names from a certificate as text for a terminal: control characters (C0, DEL, C1) as `\xNN`, so a certificate
 * cannot move the cursor and print a line of its own (a forged `spiffe id:`). Other letters are kept as they are.
 */
export function terminalSafe(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is escaped
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function formatLeaf(s: CertificateSummary, cert: x509.X509Certificate, now: Date): string {
  return [
    `subject:     ${terminalSafe(s.subject)}`,
    `spiffe id:   ${s.spiffeId === null ? '(none)' : terminalSafe(s.spiffeId)}`,
    `issuer:      ${terminalSafe(s.issuer)}`,
    `serial:      ${s.serial}`,
    `not before:  ${s.notBefore}`,
    `not after:   ${s.notAfter}`,
    // The label says "left" already: `59m 58s`, not `59m 58s left`.
    `time left:   ${s.expired ? 'expired' : timeLeft(cert, now)}`,
    `key type:    ${s.keyType}`,
    `sha256:      ${s.sha256}`,
    '',
  ].join('\n');
}

async function readPair(files: { cert: string; key: string }): Promise<[string, string]> {
  return [await readText(files.cert, '--cert', 'certificate file'), await readText(files.key, '--key', 'key file')];
}

/**
 * A bundle (the system's, even) may hold a few hundred certificates: room for them, not for a device read without
 * end. A FIFO at the path is refused at once, as every operator file is (`<(…)` included: write the file first).
 */
const MAX_CERTIFICATE_FILE_BYTES = 4 * 1024 * 1024;

/** A file named on the command line: its text, or MESHAUTH_ERR_FILE_UNREADABLE naming the flag and the path. */
async function readText(file: string, flag: string, what: string) {
  return readSettingFile(file, {
    setting: flag,
    what,
    maxBytes: MAX_CERTIFICATE_FILE_BYTES,
    reason: 'file_unreadable',
  });
}

/** The first certificate of a PEM file: the leaf of a chain (the file was parsed before, by checkKeyPair). */
function leafOf(file: string, text: string): x509.X509Certificate {
  return certificatesOf(file, text)[0] as x509.X509Certificate;
}

/** The certificates of a PEM file; a refusal names the file (the parser's message alone does not say which). */
function certificatesOf(file: string, text: string): ReturnType<typeof parseCertificatesPem> {
  try {
    return parseCertificatesPem(text);
  } catch (error) {
    return naming(file, error);
  }
}

/** A --bundle file's text, refused naming the file when it holds no certificate. */
async function readBundle(file: string): Promise<string> {
  const text = await readText(file, '--bundle', 'trust bundle');
  certificatesOf(file, text);
  return text;
}

/** Rethrows a refusal of a file's content with the file's name in front: `web.key: private key cannot be parsed`. */
function naming(file: string, error: unknown): never {
  if (!(error instanceof MeshauthError)) throw error;
  throw new MeshauthError(error.code, `${file}: ${error.message}`, {
    ...(error.reason === undefined ? {} : { reason: error.reason }),
    cause: error,
  });
}
