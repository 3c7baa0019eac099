// `meshauth ca …`: init, issue, token create, serve, rotate. Parses and bounds the flags, calls src/ca,
// prints results. Every subcommand takes --dir (default `certs`).
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { Command } from 'commander';
// The CA itself (server, jose, PKCS#12 via pkijs) and the server's logging and metrics are imported inside each
// action: the other `ca` commands need none of them, and start faster without.
import { IDENTITY_BURST, IDENTITY_RATE_PER_SECOND } from '../ca/identity-rate-limit.js';
import type { InitHolder } from '../ca/init-claim.js';
import { type LockWaitOptions, ROTATION_LOCK_FILE, STALE_LOCK_MS, withRotationLock } from '../ca/rotation-lock.js';
import { durationInRange, formatDuration } from '../config/duration.js';
import { readSettingFile } from '../config/read-setting-file.js';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId } from '../identity/index.js';
import { KEY_TYPES, parseKeyType, SVID_MAX_TTL_MS } from '../pki/issuance-options.js'; // not the index: no certificate code for flags
import { type FileToReplace, replaceFiles } from './key-pair-files.js';
import { checkOutPrefix, writeAtOutPrefix } from './out-prefix.js';
import { refuseSharedCaDirectory } from './private-ca-directory.js';

const DEFAULT_DIR = 'certs';
const MINUTE = 60_000;
const HOUR = 3_600_000;
/** `ca issue --ttl`: 1 min … 24 h (the longest SVID lifetime). */
const ISSUE_TTL = { min: MINUTE, max: SVID_MAX_TTL_MS };
/** `ca serve --svid-ttl`: 5 s … 24 h, with a warning under 5 min. */
const SERVE_TTL = { min: 5_000, max: SVID_MAX_TTL_MS, warnBelow: 5 * MINUTE };
const TOKEN_TTL = { min: MINUTE, max: 7 * 24 * HOUR };

interface ServeOptions {
  dir: string;
  listen: string;
  svidTtl: string;
  san?: string[];
  jwtTtl: string;
  issuerUrl?: string;
  k8sIssuer?: string;
  k8sJwks?: string;
  k8sAudience: string;
  k8sCaFile?: string;
  k8sTokenFile: string;
  k8sApiServer: string;
  k8sTokenReview?: boolean;
  k8sRenewWithToken?: boolean;
  k8sSecret: string;
  adminListen?: string;
  autoRotateIntermediate?: boolean;
  intermediateTtl: string;
  maxQueue?: string;
  workers?: string;
  reusePort?: boolean;
  bundleRefreshHint: string;
  logLevel: string;
}

interface InitOptions {
  trustDomain: string;
  dir: string;
  force?: boolean;
  k8sSecret?: string;
  namespace?: string;
  bundleNamespace?: string[];
  out?: string;
}

/** `ca serve --intermediate-ttl`: 10 s (tests, demos) … 1 year. */
const INTERMEDIATE_TTL = { min: 10_000, max: 365 * 24 * HOUR };
/** `ca serve --bundle-refresh-hint`: the agents' bundle refresh interval (seconds for tests, a day at most). */
const BUNDLE_REFRESH_HINT = { min: 1_000, max: 24 * HOUR };

/** DEFAULT_K8S_TOKEN_FILE / DEFAULT_K8S_API_SERVER of src/ca/cluster-api-client.ts (kept in step by test). */
export const K8S_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const K8S_API_SERVER = 'https://kubernetes.default.svc';

/** DEFAULT_K8S_AUDIENCE of src/ca/kubernetes-token.ts (kept in step by test), not imported: that module loads jose. */
export const K8S_AUDIENCE = 'meshauth';

export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description('run the built-in SPIFFE certificate authority');

  ca.command('init')
    .description(
      'create a root and an intermediate CA in --dir (refuses to overwrite without --force); with --k8s-secret, ' +
        'also the Kubernetes Secrets and trust-bundle ConfigMaps (root.key stays out of them)',
    )
    .requiredOption('--trust-domain <td>', 'SPIFFE trust domain, e.g. example.org')
    .option('--dir <dir>', 'CA directory', DEFAULT_DIR)
    .option('--force', 'replace an existing CA (every certificate it issued stops being trusted)')
    .option(
      '--k8s-secret <name>',
      'write secrets.yaml: the CA Secret NAME (mounted by `ca serve`), webhook TLS, bundle',
    )
    .option('--namespace <ns>', 'with --k8s-secret: namespace of the CA and the webhook')
    .option('--bundle-namespace <ns...>', `with --k8s-secret: more namespaces that get the trust-bundle ConfigMap`)
    .option('--out <dir>', 'with --k8s-secret: the CA directory to write (default meshauth-ca)')
    .action(async (opts: InitOptions, command: Command) => {
      if (opts.k8sSecret !== undefined) {
        return initForKubernetes(opts, command.getOptionValueSource('dir') !== 'default');
      }
      refuseKubernetesFlags({ namespace: opts.namespace, bundleNamespace: opts.bundleNamespace, out: opts.out });
      await refuseSharedCaDirectory(opts.dir);
      const { initCa } = await import('../ca/index.js');
      const { trustDomain, paths, interruptedRun } = await initCa({
        dir: opts.dir,
        trustDomain: opts.trustDomain,
        force: opts.force === true,
        directoryLock: directoryLockNotices(opts.dir),
      });
      noticeReplaced(opts, opts.dir, interruptedRun);
      process.stdout.write(
        `meshauth CA for trust domain ${trustDomain} created in ${opts.dir}\n` +
          `  give peers the trust bundle: ${paths.bundle}\n` +
          `  keys (0600): ${paths.rootKey}, ${paths.intermediateKey}, ${paths.jwtKey}\n`,
      );
    });

  ca.command('issue')
    .description(
      'issue an X509-SVID offline: writes PREFIX.crt (leaf + intermediate), PREFIX.key and optionally PREFIX.p12',
    )
    .requiredOption('--id <spiffe-id>', 'SPIFFE ID of the workload, in the CA trust domain')
    .option('--ttl <duration>', 'lifetime, 1m … 24h', '1h')
    .option('--out <prefix>', 'output path prefix (default: last segment of the ID)')
    .option('--key-type <type>', `key type: ${KEY_TYPES.join(', ')}`, 'p256')
    .option(
      '--p12',
      'also write PREFIX.p12 (PKCS#12 for JVM services; needs --p12-password-file: a password on the command line would show in ps)',
    )
    .option('--p12-password-file <file>', 'file holding the PKCS#12 password')
    .option('--dir <dir>', 'CA directory', DEFAULT_DIR)
    .action(
      async (opts: {
        id: string;
        ttl: string;
        out?: string;
        keyType: string;
        p12?: boolean;
        p12PasswordFile?: string;
        dir: string;
      }) => {
        const id = SpiffeId.parse(opts.id);
        if (opts.out !== undefined) checkOutPrefix(opts.out);
        const ttlMs = durationInRange('--ttl', opts.ttl, ISSUE_TTL.min, ISSUE_TTL.max);
        const keyType = parseKeyType(opts.keyType);
        if (opts.p12 === true && opts.p12PasswordFile === undefined) {
          throw usage('--p12 needs --p12-password-file FILE (the password is never taken on the command line)');
        }
        // Refused like every other flag given without the one it goes with: ignored, the run exited 0 having written
        // no PREFIX.p12, and the JVM service that was to load it found none (or an earlier one, of another key).
        if (opts.p12 !== true && opts.p12PasswordFile !== undefined) {
          throw usage(
            '--p12-password-file goes with --p12, which was not given: add --p12 to write PREFIX.p12 too, or leave --p12-password-file out',
          );
        }
        const password = opts.p12 === true ? await readPassword(opts.p12PasswordFile as string) : undefined;
        const { issueOffline } = await import('../ca/index.js');
        // Under the directory's lock: between a rotation's new intermediate key and its certificate the directory
        // does not load, and issuing then failed as "inconsistent"; waiting a few milliseconds for it does not.
        const svid = await underDirectoryLock(opts.dir, () => issueOffline({ dir: opts.dir, id, ttlMs, keyType }));
        const prefix = opts.out ?? id.segments.at(-1) ?? 'svid';
        // All staged before any replaces its file, and the earlier ones put back when a later one fails: a failed
        // write never leaves a key beside another certificate. Replaced files keep their owner, group and mode (run as
        // root for an app's files, they used to become root's 0600, which the app could no longer read).
        const files: FileToReplace[] = [
          { path: `${prefix}.key`, data: svid.privateKeyPem, mode: 0o600 },
          { path: `${prefix}.crt`, data: svid.certChainPem, mode: 0o644 },
        ];
        if (password !== undefined) {
          const { createPkcs12 } = await import('../pki/pkcs12.js'); // pkijs: loaded only for --p12
          const p12 = await createPkcs12({
            certificates: svid.certificates,
            privateKeyPem: svid.privateKeyPem,
            password,
            friendlyName: id.segments.at(-1) ?? 'meshauth',
          });
          files.push({ path: `${prefix}.p12`, data: p12, mode: 0o600 });
        }
        // Under the pair's lock, as `cert renew` and `cert request` write it: a renewal of the same pair meanwhile
        // would otherwise interleave its two renames with these, leaving a key beside another issuance's chain. The
        // directories made for --out go again when the write fails, as a failed `cert request`'s do.
        await writeAtOutPrefix(prefix, () => replaceFiles(files));
        const written = files.map((f) => f.path).sort();
        process.stdout.write(
          `issued ${id} (${keyType}, expires ${svid.notAfter.toISOString()}): ${written.join(', ')}\n`,
        );
      },
    );

  const token = ca.command('token').description('one-time join tokens for workload bootstrap');
  token
    .command('create')
    .description('create a one-time join token for --id and print only the token (TOKEN=$(meshauth ca token create …))')
    .requiredOption('--id <spiffe-id>', 'SPIFFE ID the token bootstraps')
    .option('--ttl <duration>', 'validity, 1m … 7d', '10m')
    .option('--dir <dir>', 'CA directory', DEFAULT_DIR)
    .action(async (opts: { id: string; ttl: string; dir: string }) => {
      const id = SpiffeId.parse(opts.id);
      const ttlMs = durationInRange('--ttl', opts.ttl, TOKEN_TTL.min, TOKEN_TTL.max);
      const { createJoinToken } = await import('../ca/join-tokens.js'); // not the CA's index: a token needs no PKI
      // Under the directory's lock: `ca init --force` removes tokens/ under it, and a token written meanwhile was
      // printed, then deleted with the old CA (token_unknown at its first use). Waiting, it goes into the new CA, or
      // is refused there when its ID is not of the new trust domain.
      const created = await underDirectoryLock(opts.dir, () => createJoinToken({ dir: opts.dir, id, ttlMs }));
      process.stdout.write(`${created}\n`);
    });

  ca.command('serve')
    .description(
      'serve the CA API over TLS: POST /v1/svid, POST /v1/token, GET /v1/bundle, /v1/jwks, ' +
        '/.well-known/openid-configuration, /healthz, /metrics',
    )
    .option('--dir <dir>', 'CA directory', DEFAULT_DIR)
    .option('--listen <host:port>', 'listen address (port 0 picks a free port)', '0.0.0.0:8443')
    .option('--svid-ttl <duration>', 'lifetime of issued SVIDs, 5s … 24h (warns under 5m)', '1h')
    .option(
      '--san <name-or-ip...>',
      'extra DNS name or IP for the serving certificate (localhost, 127.0.0.1, ::1, the host name and a specific --listen IP are always included)',
    )
    .option('--jwt-ttl <duration>', 'lifetime of JWT-SVIDs from POST /v1/token, 30s … 5m', '5m')
    .option(
      '--issuer-url <url>',
      'iss of JWT-SVIDs and base of the discovery URLs (default https://<listen address>, loopback for 0.0.0.0)',
    )
    .option('--k8s-issuer <iss>', 'accept Kubernetes service-account tokens from this issuer on POST /v1/svid')
    .option(
      '--k8s-jwks <file-or-url>',
      "the cluster's service-account JWKS: a file (reloaded when it changes) or an https URL (cached); " +
        "default: the issuer's discovery document",
    )
    .option('--k8s-audience <aud>', 'audience the service-account token must carry', K8S_AUDIENCE)
    .option('--k8s-ca-file <file>', 'cluster CA (PEM) for https to the issuer, the JWKS URL and the API server')
    .option(
      '--k8s-token-file <file>',
      "the CA's own service-account token: bearer for the API server, re-read on every use",
      K8S_TOKEN_FILE,
    )
    .option('--k8s-api-server <url>', 'API server for TokenReview (and bearer auth)', K8S_API_SERVER)
    .option(
      '--k8s-token-review',
      "also ask the API server's TokenReview about each service-account token (a deleted pod's token stops at once)",
    )
    .option(
      '--k8s-renew-with-token',
      "renew SVIDs only with the pod's service-account token, not with the SVID alone (a deleted pod's SVID stops " +
        'being renewed; every workload of this CA must bootstrap with a service-account token)',
    )
    .option('--k8s-secret <name>', 'name of the CA Secret, for the hint printed when --dir is empty', 'meshauth-ca')
    .option('--admin-listen <host:port>', 'plain-HTTP admin listener: /livez, /healthz, /readyz, /metrics')
    .option(
      '--auto-rotate-intermediate',
      "self-managed mode (needs root.key in --dir): mint a new intermediate at half the current one's life",
    )
    .option(
      '--intermediate-ttl <duration>',
      'with --auto-rotate-intermediate: lifetime of the intermediates it mints, 10s … 1y',
      '30d',
    )
    .option(
      '--max-queue <n>',
      'signing requests that may wait (0 … 1000000); past it, 429 + Retry-After (default 1000)',
    )
    .option('--workers <n>', 'signing worker threads, 0 … 64 (0 signs in the main thread; default: available cores)')
    .option(
      '--bundle-refresh-hint <duration>',
      'how often agents fetch GET /v1/bundle (its spiffe_refresh_hint), 1s … 24h; renewals bring the bundle too',
      '5m',
    )
    .option(
      '--reuse-port',
      'bind --listen with SO_REUSEPORT so several ca serve processes on one host share it (Node 22.12+, Linux or FreeBSD)',
    )
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error, fatal, silent)', 'info')
    .addHelpText(
      'after',
      [
        '',
        `Besides --max-queue, one SPIFFE ID (every replica of a workload shares it) may have ${IDENTITY_BURST} SVIDs`,
        `signed at once, then ${IDENTITY_RATE_PER_SECOND} a second per CA process; past that, 429`,
        'MESHAUTH_ERR_CA_RATE_LIMITED with Retry-After. Join tokens (single use) are not limited. JWT-SVIDs',
        '(POST /v1/token) have the same limit, counted apart, so they never use up X509-SVID renewals. The CA',
        'never issues its own ID spiffe://<td>/meshauth/ca to a workload.',
      ].join('\n'),
    )
    .action(async (opts: ServeOptions, command: Command) => {
      const [{ JWT_SVID_MAX_TTL_MS, JWT_SVID_MIN_TTL_MS, startCaServer }, { createLogger, Metrics }] =
        await Promise.all([import('../ca/index.js'), import('../telemetry/index.js')]);
      const logger = createLogger({ name: 'ca', level: opts.logLevel }); // a bad --log-level: usage, exit 2
      const svidTtlMs = durationInRange('--svid-ttl', opts.svidTtl, SERVE_TTL.min, SERVE_TTL.max);
      const jwtTtlMs = durationInRange('--jwt-ttl', opts.jwtTtl, JWT_SVID_MIN_TTL_MS, JWT_SVID_MAX_TTL_MS);
      refuseStrayServeFlags(opts, (name) => command.getOptionValueSource(name) === 'cli');
      if (svidTtlMs < SERVE_TTL.warnBelow) {
        logger.warn(
          { event: 'short_svid_ttl', svidTtl: formatDuration(svidTtlMs) },
          'SVID lifetime under 5 minutes: for tests and demos only',
        );
      }
      if (opts.k8sIssuer !== undefined) await refuseEmptySecretDir(opts);
      const intermediateTtlMs = durationInRange(
        '--intermediate-ttl',
        opts.intermediateTtl,
        INTERMEDIATE_TTL.min,
        INTERMEDIATE_TTL.max,
      );
      const maxQueue =
        opts.maxQueue === undefined ? undefined : integerOption('--max-queue', opts.maxQueue, 0, 1_000_000);
      const workers = opts.workers === undefined ? undefined : integerOption('--workers', opts.workers, 0, 64);
      const bundleRefreshHintMs = durationInRange(
        '--bundle-refresh-hint',
        opts.bundleRefreshHint,
        BUNDLE_REFRESH_HINT.min,
        BUNDLE_REFRESH_HINT.max,
      );
      // Before the keys are loaded, as ssh does: said, not refused (unprotected-key-files.ts says why).
      const { warnUnprotectedKeyFiles } = await import('../ca/unprotected-key-files.js');
      await warnUnprotectedKeyFiles(opts.dir, logger);
      const server = await startCaServer({
        dir: opts.dir,
        ...(maxQueue === undefined ? {} : { maxQueue }),
        ...(workers === undefined ? {} : { workers }),
        ...(opts.reusePort === true ? { reusePort: true } : {}),
        ...(opts.adminListen === undefined ? {} : { adminListen: opts.adminListen }),
        ...(opts.autoRotateIntermediate === true ? { autoRotateIntermediateTtlMs: intermediateTtlMs } : {}),
        listen: opts.listen,
        svidTtlMs,
        bundleRefreshHintMs,
        sans: (opts.san ?? []).map(checkSan),
        jwtTtlMs,
        ...(opts.issuerUrl === undefined ? {} : { issuerUrl: opts.issuerUrl }),
        ...(opts.k8sIssuer === undefined
          ? {}
          : {
              kubernetes: {
                issuer: opts.k8sIssuer,
                ...(opts.k8sJwks === undefined ? {} : { jwks: opts.k8sJwks }),
                audience: opts.k8sAudience,
                ...(opts.k8sCaFile === undefined ? {} : { caFile: opts.k8sCaFile }),
                tokenFile: opts.k8sTokenFile,
                apiServer: opts.k8sApiServer,
                tokenReview: opts.k8sTokenReview === true,
                renewWithToken: opts.k8sRenewWithToken === true,
              },
            }),
        logger,
        metrics: new Metrics({ defaultMetrics: true }),
      });
      // Handlers first, then the line scripts wait for: a signal sent right after it must find them in place.
      const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      process.stdout.write(`meshauth ca listening on ${server.url}\n`);
      if (server.adminUrl !== undefined) process.stdout.write(`meshauth ca admin listening on ${server.adminUrl}\n`);
      const signal = await stopSignal;
      logger.info({ event: 'ca_stopping', signal }, 'CA stopping');
      await server.close();
      process.exit(0);
    });

  ca.command('rotate')
    .description(
      'rotate the intermediate or the JWT key, or the root in three steps (--root, --root --activate, --root --retire)',
    )
    .option('--intermediate', 'new intermediate under the active root; it signs new SVIDs at once')
    .option(
      '--jwt-key',
      'new JWT-SVID signing key (jwt.key): published at once, signing 2 minutes later; the old key stays in /v1/jwks until its tokens expired',
    )
    .option('--root', 'publish a new root in bundle.pem next to the old one (not signing yet)')
    .option('--activate', 'with --root: start signing under the published root, with a new intermediate')
    .option('--retire', 'with --root: remove the previous root from bundle.pem once no SVID under it can be valid')
    .option('--force', 'with --root --retire: retire even though SVIDs under the previous root may still be valid')
    .option('--dir <dir>', 'CA directory', DEFAULT_DIR)
    .option('--k8s-secret <name>', 'then write DIR/ca-secret.yaml: the CA Secret NAME and trust-bundle ConfigMaps')
    .option('--namespace <ns>', 'with --k8s-secret: namespace of the CA Secret')
    .option('--bundle-namespace <ns...>', 'with --k8s-secret: more namespaces that get the trust-bundle ConfigMap')
    .addHelpText(
      'after',
      `
Root rotation, step by step (docs/ca.md):
  1. meshauth ca rotate --root             new root added to bundle.pem; old root keeps signing
  2. wait until every sidecar and client has fetched the new bundle (GET /v1/bundle, spiffe_refresh_hint)
  3. meshauth ca rotate --root --activate  new intermediate under the new root signs from now on;
                                           the old root moves to root-previous.crt/.key and stays in bundle.pem
  4. meshauth ca rotate --root --retire    once the longest SVID lifetime (24 h) has passed since step 3: the old
                                           root leaves bundle.pem, root-previous.key is deleted; peers still on
                                           it lose their connections (refused before then unless --force)
A running \`ca serve\` picks up every step within a second, without a restart.`,
    )
    .action(async (opts: RotateOptions) => {
      const {
        BUNDLE_REFRESH_HINT_SECONDS,
        activateNextRoot,
        checkK8sTarget,
        publishNextRoot,
        retirePreviousRoot,
        rotateIntermediate,
        rotateJwtSigningKey,
        writeCaSecretManifest,
      } = await import('../ca/index.js');
      const chosen = [opts.intermediate, opts.root, opts.jwtKey].filter((flag) => flag === true).length;
      if (chosen > 1) throw usage('use one of --intermediate, --root, --jwt-key');
      if (opts.activate === true && opts.root !== true) throw usage('--activate goes with --root');
      if (opts.retire === true && opts.root !== true) throw usage('--retire goes with --root');
      if (opts.retire === true && opts.activate === true) throw usage('use one of --activate, --retire');
      if (opts.force === true && opts.retire !== true) throw usage('--force goes with --root --retire');
      const target = rotateTarget(opts);
      // Before anything rotates: a name refused only when the manifest is written would leave the CA rotated with
      // no ca-secret.yaml, and after `--root --activate` the same command cannot be run again to write it.
      if (target !== undefined) checkK8sTarget(target);
      // Under the directory's lock, manifest included: a `ca serve --auto-rotate-intermediate` replica or another
      // `ca rotate` writing at the same moment left a key from one rotation beside the certificate of the other.
      await underDirectoryLock(opts.dir, async () => {
        let message: string;
        if (opts.jwtKey === true) {
          const rotation = await rotateJwtSigningKey(opts.dir);
          // Replicas publish the new key at once and sign with it only once verifiers can have fetched it.
          message =
            `new JWT-SVID signing key ${rotation.kid} is published; it signs from about ` +
            `${rotation.signsFrom.toISOString()} (with --k8s-secret: that long after the Secret reaches each replica); ` +
            `the previous key ${rotation.previousKid} stays in /v1/jwks until ` +
            `${rotation.previousPublishedUntil.toISOString()}`;
        } else {
          let result: Awaited<ReturnType<typeof rotateIntermediate>>;
          if (opts.intermediate === true) result = await rotateIntermediate(opts.dir);
          else if (opts.root === true && opts.retire === true)
            result = await retirePreviousRoot(opts.dir, new Date(), opts.force === true);
          else if (opts.root === true)
            result = opts.activate === true ? await activateNextRoot(opts.dir) : await publishNextRoot(opts.dir);
          else throw usage('say what to rotate: --intermediate, --root [--activate | --retire] or --jwt-key');
          const what = {
            intermediate: 'new intermediate is signing',
            root_published: 'new root published in bundle.pem (not signing yet; activate with --root --activate)',
            root_activated: 'new root and intermediate are signing; the old root stays in bundle.pem until retired',
            root_retired:
              'previous root removed from bundle.pem (root-previous.key deleted, certificate kept as root-retired.crt)',
          }[result.action];
          message = `${what} (serial ${result.serial}; ${result.roots} root(s) in the bundle)`;
          const sincePublished =
            result.publishedAt === undefined ? undefined : Date.now() - result.publishedAt.getTime();
          if (sincePublished !== undefined && sincePublished < BUNDLE_REFRESH_HINT_SECONDS * 1000) {
            process.stderr.write(
              `meshauth: warning: the new root was published ${Math.round(sincePublished / 1000)} s ago; sidecars ` +
                `fetch the bundle every ${BUNDLE_REFRESH_HINT_SECONDS / 60} minutes by default (ca serve --bundle-refresh-hint) and ` +
                'at every renewal, and one that has not fetched it since cannot reach the CA or ' +
                'peers under the new root until its ca.bundle file holds both roots (docs/ca.md, step 2)\n',
            );
          }
        }
        process.stdout.write(`${message}\n`);
        if (target === undefined) return;
        const manifest = await writeCaSecretManifest(opts.dir, target);
        process.stdout.write(
          `wrote ${manifest.file} (Secret ${target.secretName}, trust bundle): apply it, and every CA replica and ` +
            `sidecar picks it up without a restart:\n  kubectl apply -f ${manifest.file}\n` +
            `the intermediate now expires ${manifest.intermediateNotAfter.toISOString()}\n`,
        );
      });
    });
}

/**
 * `ca serve` flags that mean something only beside another one. Those with a default (--k8s-audience,
 * --k8s-token-file, --k8s-api-server, --intermediate-ttl) are refused only when typed (`given`): unread, a CA told
 * `--intermediate-ttl 7d` kept minting nothing, and one told `--k8s-audience` without --k8s-issuer started with no
 * Kubernetes bootstrap at all, both without a word.
 */
function refuseStrayServeFlags(opts: ServeOptions, given: (option: keyof ServeOptions) => boolean): void {
  if (opts.k8sIssuer === undefined) {
    const stray = [
      ['--k8s-jwks', opts.k8sJwks !== undefined],
      ['--k8s-ca-file', opts.k8sCaFile !== undefined],
      ['--k8s-token-review', opts.k8sTokenReview !== undefined],
      ['--k8s-renew-with-token', opts.k8sRenewWithToken !== undefined],
      ['--k8s-audience', given('k8sAudience')],
      ['--k8s-token-file', given('k8sTokenFile')],
      ['--k8s-api-server', given('k8sApiServer')],
    ].find(([, present]) => present === true);
    if (stray !== undefined) throw usage(`${stray[0]} needs --k8s-issuer`);
  }
  if (opts.autoRotateIntermediate !== true && given('intermediateTtl')) {
    throw usage(
      '--intermediate-ttl goes with --auto-rotate-intermediate (it sets the lifetime of the intermediates ca serve ' +
        'mints; `ca rotate --intermediate` makes 30-day ones)',
    );
  }
}

/**
 * A plain `ca init` that replaced a half-made CA removed files the user did not name (tokens/, the roots of a
 * rotation, retired JWT keys): said, with the run that left it. Under --force the user asked for the replacement.
 */
function noticeReplaced(opts: InitOptions, dir: string, run: InitHolder | undefined): void {
  if (run === undefined || opts.force === true) return;
  const pid = run.writer === undefined ? '' : `pid ${run.writer.pid} `;
  process.stderr.write(
    `meshauth: replaced what an unfinished \`meshauth ca init\` (${pid}on ${run.host}) left in ${dir}, with its ` +
      'tokens/, previous and pending roots and retired JWT keys\n',
  );
}

/** Runs `action` holding the CA directory's lock, saying on stderr when it has to wait for another process. */
function underDirectoryLock<T>(dir: string, action: () => Promise<T>): Promise<T> {
  return withRotationLock(dir, action, directoryLockNotices(dir));
}

/** What a command waiting for, or losing, the CA directory's lock says on stderr. */
function directoryLockNotices(dir: string): LockWaitOptions {
  return {
    onWait: (holder) =>
      process.stderr.write(
        `meshauth: waiting for another process changing ${dir} (${ROTATION_LOCK_FILE}: ${holder}); ` +
          'a lock left by a process that died is broken at once from the same boot, PID and time namespace, after ' +
          `${Math.round(STALE_LOCK_MS / 1000)} s otherwise\n`,
      ),
    onHolderEnded: (holder) => {
      process.stderr.write(
        `meshauth: broke ${ROTATION_LOCK_FILE} in ${dir}: the process that held it (pid ${holder.holderPid} on ` +
          `${holder.holderHost}) has ended (killed, most likely)\n`,
      );
    },
    onTakenOver: () =>
      process.stderr.write(
        `meshauth: warning: another process broke ${ROTATION_LOCK_FILE} as stale while this one was writing ${dir}: ` +
          'check that `meshauth ca serve` loads it (meshauth_ca_issuer_valid 1), or run the command again\n',
      ),
  };
}

interface RotateOptions {
  intermediate?: boolean;
  root?: boolean;
  activate?: boolean;
  retire?: boolean;
  force?: boolean;
  jwtKey?: boolean;
  dir: string;
  k8sSecret?: string;
  namespace?: string;
  bundleNamespace?: string[];
}

function rotateTarget(opts: RotateOptions) {
  if (opts.k8sSecret === undefined) {
    refuseKubernetesFlags({ namespace: opts.namespace, bundleNamespace: opts.bundleNamespace });
    return undefined;
  }
  if (opts.namespace === undefined) throw usage('--k8s-secret needs --namespace');
  return { secretName: opts.k8sSecret, namespace: opts.namespace, bundleNamespaces: opts.bundleNamespace ?? [] };
}

/** The flags only --k8s-secret reads, as given (undefined: not given). */
interface KubernetesFlags {
  readonly namespace: string | undefined;
  readonly bundleNamespace: readonly string[] | undefined;
  /** `ca init` only: the directory --k8s-secret writes. */
  readonly out?: string | undefined;
}

/**
 * Refuses the flags of --k8s-secret given without it, naming only those given: one sentence naming all of them sent
 * a user who typed --namespace looking for an --out they never gave. --out is the CA directory of --k8s-secret; for a
 * CA alone that is --dir, said with the value given.
 */
function refuseKubernetesFlags(flags: KubernetesFlags): void {
  const given = [
    ...(flags.namespace === undefined ? [] : ['--namespace']),
    ...(flags.bundleNamespace === undefined ? [] : ['--bundle-namespace']),
    ...(flags.out === undefined ? [] : ['--out']),
  ];
  if (given.length === 0) return;
  const names = given.length === 1 ? given.join('') : `${given.slice(0, -1).join(', ')} and ${given.at(-1)}`;
  const leaveOut = given.length === 1 ? `leave ${names} out` : 'leave them out';
  const dir = flags.out === undefined ? '' : ` and name the CA directory with --dir (--dir ${flags.out})`;
  throw usage(
    `${names} ${given.length === 1 ? 'goes' : 'go'} with --k8s-secret, which was not given: add --k8s-secret NAME ` +
      `to write the Kubernetes manifests too, or ${leaveOut}${dir}`,
  );
}

/**
 * `ca init --k8s-secret`: the CA directory for the operator, the manifests for the cluster, the next commands. The
 * directory is --out, or --dir when that was given (an explicit `--dir certs` too), else meshauth-ca.
 */
async function initForKubernetes(opts: InitOptions, dirGiven: boolean): Promise<void> {
  if (opts.namespace === undefined) throw usage('--k8s-secret needs --namespace (where the CA runs)');
  if (dirGiven && opts.out !== undefined && resolve(opts.out) !== resolve(opts.dir)) {
    throw usage(
      `--dir ${opts.dir} and --out ${opts.out} both name the CA directory ca init --k8s-secret writes: give one of them`,
    );
  }
  const dir = opts.out ?? (dirGiven ? opts.dir : 'meshauth-ca');
  await refuseSharedCaDirectory(dir);
  const { initCaForKubernetes } = await import('../ca/index.js');
  const target = {
    secretName: opts.k8sSecret as string,
    namespace: opts.namespace,
    bundleNamespaces: opts.bundleNamespace ?? [],
  };
  const result = await initCaForKubernetes({
    dir,
    trustDomain: opts.trustDomain,
    force: opts.force === true,
    directoryLock: directoryLockNotices(dir),
    ...target,
  });
  noticeReplaced(opts, dir, result.interruptedRun);
  const namespaceList = [...new Set([target.namespace, ...target.bundleNamespaces])];
  const namespaces = namespaceList.join(', ');
  // secrets.yaml puts a ConfigMap in every one of them: each must exist before it is applied.
  const createNamespaces = namespaceList
    .map((ns) => `  kubectl create namespace ${ns} --dry-run=client -o yaml | kubectl apply -f -`)
    .join('\n');
  const bundleFlags = target.bundleNamespaces.map((ns) => ` --bundle-namespace ${ns}`).join('');
  process.stdout.write(
    `meshauth CA for trust domain ${result.trustDomain} created in ${dir}
  ${result.secretsFile}  Secret ${target.secretName} (root.crt, intermediate.crt, intermediate.key, bundle.pem, jwt.key),
      Secret meshauth-webhook-tls, ConfigMap meshauth-trust-bundle in ${namespaces}
  ${result.webhookCaFile}  CA of the webhook's certificate (the MutatingWebhookConfiguration caBundle)
  ${result.rootKeyFile}  the root key (0600): in no manifest; keep it offline, e.g. in a vault

Next:
${createNamespaces}
  kubectl apply -f ${result.secretsFile}
  kubectl apply -k deploy/base
  ${result.patchCommand}

The intermediate expires ${result.intermediateNotAfter.toISOString()}. Before then, where ${result.rootKeyFile} is:
  meshauth ca rotate --intermediate --dir ${dir} --k8s-secret ${target.secretName} --namespace ${target.namespace}${bundleFlags}
  kubectl apply -f ${dir}/ca-secret.yaml
`,
  );
}

/**
 * A Kubernetes CA whose Secret is empty, not mounted or partly filled cannot start, and the distroless image has no
 * shell to fix it from inside: say once, exactly, what to run outside, and exit 2 (MESHAUTH_ERR_CA_NOT_INITIALIZED).
 * A directory a `ca init` is still making (its `.ca-init` marker) is left to the CA files' own message.
 */
async function refuseEmptySecretDir(opts: ServeOptions): Promise<void> {
  const { lstatSync } = await import('node:fs');
  const { basename, dirname, join } = await import('node:path');
  const { caPaths } = await import('../ca/ca-files.js');
  const paths = caPaths(opts.dir);
  // Entries, not what they name: a Secret volume's keys are links into its `..data`. A --dir that is no directory
  // holds none of them.
  const present = (file: string) => {
    try {
      return lstatSync(file, { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  };
  const needed = [paths.rootCert, paths.intermediateCert, paths.intermediateKey, paths.bundle];
  const missing = needed.filter((file) => !present(file)).map((file) => basename(file));
  if (missing.length === 0 || present(paths.initMarker)) return;
  // In a pod the service-account directory names the namespace the CA runs in.
  const namespace =
    (await readFile(join(dirname(opts.k8sTokenFile), 'namespace'), 'utf8').catch(() => '')).trim() || 'meshauth';
  const { emptyCaSecretRefusal, incompleteCaSecretRefusal } = await import('./ca-refusal.js');
  const context = { dir: opts.dir, secret: opts.k8sSecret, namespace };
  throw missing.length === needed.length
    ? emptyCaSecretRefusal(context)
    : incompleteCaSecretRefusal({ ...context, missing });
}

async function readPassword(file: string): Promise<string> {
  const text = readSettingFile(file, {
    setting: '--p12-password-file',
    what: 'password file',
    reason: 'password_unreadable',
  });
  const password = text.replace(/\r?\n$/, '');
  if (password.length === 0) throw usage(`password file ${file} is empty`);
  return password;
}

/** DNS labels of a host name (a first `*` label allowed: a wildcard name), or an IP address. */
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * A `--san` goes into the serving certificate as a DNS name or an IP address as given. Anything else (a URL, a
 * host:port, a typo) was put there as a DNS name no client ever matches, and the CA started without a word.
 */
function checkSan(san: string): string {
  // An empty one is left out, as it always was.
  if (san === '' || isIP(san) !== 0) return san;
  // No host name ends in an all-numeric label (a top-level domain never is one): `10.0.0.256` or `10.0.5` is a mistyped
  // IP address, which went in as a DNS name that no client connecting by address matches.
  if (san.length <= 253 && DNS_NAME.test(san) && !/(^|\.)\d+$/.test(san)) return san;
  throw usage(`--san ${JSON.stringify(san)} is not a DNS name or an IP address (e.g. ca.mesh.svc or 10.0.0.5)`);
}

function usage(message: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_USAGE', message, { reason: 'usage' });
}

function integerOption(flag: string, value: string, min: number, max: number): number {
  const n = /^\d{1,7}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`${flag} must be an integer from ${min} to ${max}`);
  return n;
}
