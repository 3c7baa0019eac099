// `ca serve`: the CA API over TLS with a serving certificate from the CA's own chain (SPIFFE ID
// spiffe://<td>/meshauth/ca plus DNS/IP SANs so curl and browsers can verify it by name). The serving certificate
// is re-issued at half its lifetime and whenever the intermediate or bundle changes on disk.
import { generateKeyPair as generateNodeKeyPair } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { RequestListener } from 'node:http';
import { createServer } from 'node:https';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { MeshauthError } from '../errors/index.js';
import { caSpiffeId } from '../identity/index.js';
import { x509 } from '../pki/index.js';
import {
  acceptWithOptionalCertificate,
  clientAddress,
  mtlsSecureContext,
  REUSE_PORT_MIN_NODE,
  reusePortSupported,
} from '../platform/index.js';
import { type Logger, type Metrics, RateLimitedLog, RefusalLog } from '../telemetry/index.js';
import { protocolOptions, tlsClientErrorReason, withoutResumption } from '../tls/index.js';
import { type CaAdminListener, startCaAdminListener } from './admin-listener.js';
import { createCaRequestHandler } from './api.js';
import { CaAuthority } from './authority.js';
import { caPaths } from './ca-files.js';
import { CertificateWatch } from './certificate-watch.js';
import { type DoorLimits, openDoor } from './door.js';
import type { IdentityRateLimit } from './identity-rate-limit.js';
import { startJoinTokenPruning } from './join-token-prune.js';
import { JwtKeyRing } from './jwt-key-ring.js';
import { JWT_SVID_MAX_TTL_MS } from './jwt-svid.js';
import { type KubernetesTokenOptions, KubernetesTokenVerifier } from './kubernetes-token.js';
import { httpsUrl, parseListenAddress } from './listen-address.js';
import { DEFAULT_MAX_QUEUE, withLoadShedding } from './load-shedding.js';
import { answerNodeRefusals } from './node-refusals.js';
import { checkIssuerUrl } from './oidc-metadata.js';
import { servingSans } from './serving-sans.js';
import { defaultWorkerCount, SigningPool } from './signing-pool.js';

const SERVING_CHECK_INTERVAL_MS = 1000;
/** A TLS handshake (and a connection that has not sent a byte) gets this long. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** At most one `ca_overloaded` line per this interval, from the door and load shedding together; the rest counted. */
const OVERLOAD_LOG_INTERVAL_MS = 10_000;
/**
 * The mesh TLS profile with TLS 1.2 allowed (ECDHE + AEAD suites only, no renegotiation).
 * No TLS session resumption: a resumed session carries no client certificate chain (OpenSSL keeps at most the leaf),
 * and renewal and `POST /v1/token` authenticate by that chain (the certificate of the handshake itself).
 */
const PROFILE = protocolOptions({ tls12: true });
const TLS_OPTIONS = { ...PROFILE, secureOptions: withoutResumption(PROFILE.secureOptions) };

export interface CaServerOptions {
  readonly dir: string;
  /** `host:port`; port 0 picks a free port. */
  readonly listen: string;
  /** Lifetime of issued SVIDs (and of the server's own certificate). The CLI bounds it (5 s … 24 h). */
  readonly svidTtlMs: number;
  /**
   * Extra DNS names / IP addresses for the serving certificate, besides localhost, 127.0.0.1, ::1, the host name and
   * the IP of `listen` when it is a specific one.
   */
  readonly sans?: readonly string[];
  /** Lifetime of JWT-SVIDs from `POST /v1/token`; default and maximum 5 min (the CLI bounds it). */
  readonly jwtTtlMs?: number;
  /** `iss` of JWT-SVIDs; default `https://<listen host>:<port>` (the URL this server answers on). */
  readonly issuerUrl?: string;
  /** Accept Kubernetes projected service-account tokens on `POST /v1/svid`. */
  readonly kubernetes?: Omit<KubernetesTokenOptions, 'logger'>;
  /** `host:port` of the plain-HTTP admin listener (/livez, /healthz, /readyz, /metrics). */
  readonly adminListen?: string;
  /** Self-managed mode: mint a new intermediate of this lifetime at half the current one's life (needs root.key). */
  readonly autoRotateIntermediateTtlMs?: number;
  /** Signing requests allowed to wait beyond those in progress; past it, 429 + Retry-After (default 1000). */
  readonly maxQueue?: number;
  /** Signing worker threads; 0 signs in the main thread (default: available cores). */
  readonly workers?: number;
  /**
   * Bind `listen` with SO_REUSEPORT: several CA processes on one host share the address and the kernel spreads new
   * connections over them, as a Service's kernel rules do across pods (Node ≥ 22.12, Linux or FreeBSD).
   */
  readonly reusePort?: boolean;
  /** The door before TLS (door.ts, connection-gate.ts); defaults suit a CA process on one core. */
  readonly connections?: DoorLimits & {
    /** A connection that sends nothing for this long is closed (default: the TLS handshake timeout, 10 s). */
    readonly silentMs?: number;
  };
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => Date;
  /**
   * Per-identity CSR limit; default IdentityRateLimit's (identity-rate-limit.ts), far above any agent. Not a flag:
   * for load tests that loop one identity as fast as the CA signs.
   */
  readonly identityRateLimit?: IdentityRateLimit;
  /** How often agents should fetch the bundle, served as `spiffe_refresh_hint` (default 5 min; whole seconds). */
  readonly bundleRefreshHintMs?: number;
  /** Per-identity JWT-SVID limit (`POST /v1/token`), buckets of its own; the same defaults. Not a flag either. */
  readonly jwtIdentityRateLimit?: IdentityRateLimit;
}

export interface CaServer {
  readonly url: string;
  readonly port: number;
  /** `http://host:port` of the admin listener, when `adminListen` was given. */
  readonly adminUrl: string | undefined;
  /** `iss` of the JWT-SVIDs this server signs. */
  readonly issuer: string;
  close(): Promise<void>;
}

export async function startCaServer(options: CaServerOptions): Promise<CaServer> {
  const now = options.now ?? (() => new Date());
  const address = parseListenAddress(options.listen);
  if (options.reusePort === true && !reusePortSupported()) {
    const { major, minor } = REUSE_PORT_MIN_NODE;
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `--reuse-port needs Node ${major}.${minor} or newer on Linux or FreeBSD (this is Node ${process.versions.node} ` +
        `on ${process.platform}; an older Node ignores it and refuses the second process with EADDRINUSE)`,
      { reason: 'usage' },
    );
  }
  const authority = await CaAuthority.open(options.dir, options.logger);
  options.metrics.exposeCaQueueGauges();
  const sans = servingSans({ listenHost: address.host, hostName: hostname(), extra: options.sans ?? [] });
  const serving = new ServingIdentity(authority, options.svidTtlMs, sans, now);
  if (options.autoRotateIntermediateTtlMs !== undefined && !(await exists(caPaths(options.dir).rootKey))) {
    throw new MeshauthError(
      'MESHAUTH_ERR_USAGE',
      `--auto-rotate-intermediate needs the root key in the CA directory (${caPaths(options.dir).rootKey} is missing); ` +
        'a CA without it rotates with `meshauth ca rotate --intermediate` where the root key is kept',
      { reason: 'usage' },
    );
  }
  // Only a directory `ca init` made (it has the join-token store) is written to; a Secret's copy never is.
  const writable = await isDirectory(caPaths(options.dir).tokens);
  const jwtKeys = await JwtKeyRing.open(options.dir, options.logger, writable, now);
  if (options.issuerUrl !== undefined) checkIssuerUrl(options.issuerUrl);
  const kubernetes =
    options.kubernetes === undefined
      ? undefined
      : await KubernetesTokenVerifier.create({ ...options.kubernetes, logger: options.logger });
  // A Kubernetes CA serving from a read-only Secret has no join-token store; one with a writable --dir keeps both.
  const joinTokens = kubernetes === undefined || writable;
  if (joinTokens && kubernetes?.renewsWithToken === true) {
    // A join token is spent at bootstrap: a workload that came with one cannot renew with it.
    options.logger.warn(
      { event: 'join_tokens_cannot_renew', dir: options.dir },
      '--k8s-renew-with-token: this CA also takes join tokens (its directory is writable), and workloads bootstrapped with one cannot renew: serve them from a CA without the flag',
    );
  }
  const workers = options.workers ?? defaultWorkerCount();
  const signer = SigningPool.start(options.dir, authority, workers);
  // The default issuer names the port actually bound, known only after listen(); the handler reads it lazily.
  let issuer = options.issuerUrl ?? '';
  // A storm is refused at the door and at the signing queue alike: one log for both keeps it to one line per interval.
  const overloadLog = new RateLimitedLog(options.logger, options.metrics, 'ca_overloaded', OVERLOAD_LOG_INTERVAL_MS);
  // Refused requests (a bad token or CSR, an unknown path, a refused method, a head node:http refuses): anyone can
  // repeat one in a loop, so only the first lines per reason per interval; each is still counted.
  const rejectionLog = new RefusalLog(
    options.logger,
    options.metrics,
    'ca_request_rejected',
    'reason',
    OVERLOAD_LOG_INTERVAL_MS,
  );
  // The context of the handshakes the door starts (acceptWithOptionalCertificate, below), renewed with the serving
  // certificate and the CA's material. Renewal authenticates with the client certificate, bootstrap with a join token
  // and no certificate: the handshake asks for a certificate, verifies a presented chain against the bundle's roots
  // (`ca`, from serving.issue()) but lets the request through either way; peer-svid.ts judges the verdict and the leaf.
  let secureContext = mtlsSecureContext({ ...(await serving.issue()), ...TLS_OPTIONS });
  // node:http's handling of the handshaken connections the door hands over: the server itself never listens nor
  // starts a handshake, so it has no TLS options of its own.
  const server = createServer(
    {
      // The headers/request timeouts are enforced by a sweep (default every 30 s); a slot is worth checking sooner.
      connectionsCheckingInterval: 1000,
    },
    oneRequestPerConnection(
      withLoadShedding(
        createCaRequestHandler({
          dir: options.dir,
          authority,
          signer,
          svidTtlMs: options.svidTtlMs,
          jwtKeys,
          get issuer() {
            return issuer;
          },
          jwtTtlMs: Math.min(options.jwtTtlMs ?? JWT_SVID_MAX_TTL_MS, JWT_SVID_MAX_TTL_MS),
          ...(kubernetes === undefined ? {} : { kubernetes }),
          joinTokens,
          logger: options.logger,
          metrics: options.metrics,
          rejectionLog,
          now,
          ...(options.identityRateLimit === undefined ? {} : { identityRateLimit: options.identityRateLimit }),
          ...(options.bundleRefreshHintMs === undefined
            ? {}
            : { bundleRefreshHintSeconds: Math.max(1, Math.round(options.bundleRefreshHintMs / 1000)) }),
          ...(options.jwtIdentityRateLimit === undefined ? {} : { jwtIdentityRateLimit: options.jwtIdentityRateLimit }),
        }),
        {
          maxQueue: options.maxQueue ?? DEFAULT_MAX_QUEUE,
          workers,
          // The door is opened below, before any request can arrive.
          openConnections: () => door.openConnections(),
          overloadLog,
          metrics: options.metrics,
        },
      ),
    ),
  );
  server.headersTimeout = 10_000;
  // The whole request (at most 64 KiB, sent at once by every client of the CA) within the handshake's 10 s too: a
  // client trickling its body holds a door slot until then (it held one for 30 s).
  server.requestTimeout = 10_000;
  // One call per connection, as the CA's clients make them: a keep-alive connection would keep its door slot for as
  // long as its client keeps asking. A request pipelined behind the first is not read: the connection ends after the
  // first answer (oneRequestPerConnection).
  server.maxRequestsPerSocket = 1;
  // A refused handshake (plain HTTP, TLS ≤ 1.1, no common ALPN protocol or suite, a handshake left unfinished) is
  // counted by reason; anyone can fail handshakes at will, so one line per interval, the rest counted as suppressed.
  const handshakeLog = new RateLimitedLog(
    options.logger,
    options.metrics,
    'ca_tls_handshake_failed',
    OVERLOAD_LOG_INTERVAL_MS,
  );
  const handshakeRefused = (reason: string, remote: string | undefined, error: string) => {
    options.metrics.tlsHandshakeFailures.inc({ direction: 'ca', reason });
    handshakeLog.warn({ reason, remote, error }, 'TLS handshake refused');
  };
  server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
    const reason =
      error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
        ? 'handshake_timeout'
        : tlsClientErrorReason(error, socket.authorizationError);
    handshakeRefused(reason, clientAddress(socket.remoteAddress), error.code ?? error.message);
  });
  // Without these, node:http answers a malformed or oversized head, or one past headersTimeout, with a bare
  // 400/431/408 and drops a CONNECT without a word: none counted or logged.
  answerNodeRefusals(server, { metrics: options.metrics, rejectionLog });
  // The TLS server never listens: the door accepts, and hands it each connection whose turn has come.
  const { silentMs = HANDSHAKE_TIMEOUT_MS, ...limits } = options.connections ?? {};
  const door = openDoor({
    tlsServer: server,
    // tls.Server's own handshake would do the same, but on Node 24 it reads a verified client's certificate through
    // getPeerX509Certificate(), which leaks about 8-10 KB per renewal (src/platform/tls-accept.ts).
    handOver: (raw) =>
      acceptWithOptionalCertificate(raw, {
        secureContext,
        // Node's default is 120 s; a connection in its handshake holds one of the door's slots.
        handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
        // As https.Server offers by default: HTTP/1.1 only.
        alpnProtocols: ['http/1.1'],
        onSecure: (socket) => server.emit('secureConnection', socket),
        onFailure: (error, socket) => {
          server.emit('tlsClientError', error, socket);
          socket.destroy();
        },
      }),
    limits,
    silentMs,
    metrics: options.metrics,
    overloadLog,
    // More than one TLS record (a whole ClientHello) before the handshake: the door's limit, a `policy` refusal.
    oversizedFirstFlight: (remote) =>
      handshakeRefused('policy', remote, 'more than one TLS record before the handshake'),
  });
  // The front of the CA: every connection the door holds or handed on, and the pending log summary.
  const closeFront = (): Promise<void> => {
    server.close();
    server.closeAllConnections();
    const closed = door.close();
    overloadLog.close();
    handshakeLog.close();
    rejectionLog.close();
    return closed;
  };
  let port: number;
  try {
    port = await door.listen(address.host, address.port, options.reusePort === true);
  } catch (error) {
    await closeFront();
    await kubernetes?.close();
    await signer.close();
    throw error;
  }
  const watch = new CertificateWatch({
    dir: options.dir,
    authority,
    metrics: options.metrics,
    logger: options.logger,
    now,
    ...(options.autoRotateIntermediateTtlMs === undefined
      ? {}
      : { autoRotateTtlMs: options.autoRotateIntermediateTtlMs }),
  });
  watch.check();
  let admin: CaAdminListener | undefined;
  if (options.adminListen !== undefined) {
    try {
      admin = await startCaAdminListener({
        listen: options.adminListen,
        authority,
        metrics: options.metrics,
        logger: options.logger,
        now,
      });
    } catch (error) {
      await kubernetes?.close();
      await signer.close();
      await closeFront();
      throw error;
    }
  }
  const timer = setInterval(() => {
    watch.check();
    // Not only when a request comes: a replica idle after `ca rotate --jwt-key` would start the new key's publication
    // delay late and sign with the old key after the other replicas (and jwt-retired.json) stopped publishing it.
    void jwtKeys.refresh(); // never rejects: a failed reload is logged and keeps the keys
    serving
      .refreshIfNeeded()
      .then((context) => {
        // The door's handshakes take it from the next connection on; the server's own context does no handshake.
        if (context !== undefined) secureContext = mtlsSecureContext({ ...context, ...TLS_OPTIONS });
      })
      .catch((error: unknown) => {
        options.logger.error({ event: 'serving_cert_failed', err: error }, 'cannot renew the CA serving certificate');
      });
  }, SERVING_CHECK_INTERVAL_MS);
  timer.unref();
  // Spent and expired join-token records are otherwise never removed: a CA issuing tokens for years would keep every
  // one. Only in a directory the CA writes to; the first pass runs now, in the background.
  const pruning = writable ? startJoinTokenPruning({ dir: options.dir, logger: options.logger, now }) : undefined;
  const url = httpsUrl(address.host, port);
  if (issuer === '') issuer = url;
  options.logger.info(
    {
      event: 'ca_listening',
      url,
      adminUrl: admin?.url,
      issuer,
      trustDomain: authority.material.trustDomain.name,
      sans,
      joinTokens,
      autoRotateIntermediate: options.autoRotateIntermediateTtlMs !== undefined,
      workers,
      maxQueue: options.maxQueue ?? DEFAULT_MAX_QUEUE,
      reusePort: options.reusePort === true,
    },
    'CA listening',
  );
  return {
    url,
    port,
    adminUrl: admin?.url,
    issuer,
    close: async () => {
      clearInterval(timer);
      await pruning?.close();
      await admin?.close();
      await watch.settle();
      await kubernetes?.close();
      await closeFront();
      await signer.close();
    },
  };
}

/** The CA's own TLS certificate, issued by the current intermediate like any SVID. */
class ServingIdentity {
  readonly #authority: CaAuthority;
  readonly #ttlMs: number;
  readonly #sans: readonly string[];
  readonly #now: () => Date;
  #generation = -1;
  #renewAt = 0;

  constructor(authority: CaAuthority, ttlMs: number, sans: readonly string[], now: () => Date) {
    this.#authority = authority;
    this.#ttlMs = ttlMs;
    this.#sans = sans;
    this.#now = now;
  }

  async issue(): Promise<SecureContextOptions> {
    const { publicKey, privateKey } = await promisify(generateNodeKeyPair)('ec', { namedCurve: 'P-256' });
    const now = this.#now();
    const generation = this.#authority.generation;
    const issued = await this.#authority.issue({
      id: caSpiffeId(this.#authority.material.trustDomain),
      publicKey: new x509.PublicKey(publicKey.export({ type: 'spki', format: 'der' })),
      ttlMs: this.#ttlMs,
      now,
      dnsNames: this.#sans.filter((san) => isIP(san) === 0),
      ipAddresses: this.#sans.filter((san) => isIP(san) !== 0),
    });
    this.#generation = generation;
    const lifetime = issued.expiresAt.getTime() - now.getTime();
    this.#renewAt = Date.now() + Math.max(lifetime / 2, 1000);
    // `ca`: OpenSSL verifies a client's chain against the bundle's roots in the handshake (and lets a connection
    // without a certificate through, rejectUnauthorized being false); peer-svid.ts takes its verdict and reads the
    // leaf alone. A new context follows every change of the CA's material, bundle.pem's roots included.
    return {
      cert: issued.certChainPem.join(''),
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      ca: [...this.#authority.material.bundle.toPemList()],
    };
  }

  /** A new context when the CA material changed or half the serving certificate's lifetime has passed. */
  async refreshIfNeeded(): Promise<SecureContextOptions | undefined> {
    await this.#authority.refresh();
    if (this.#authority.generation === this.#generation && Date.now() < this.#renewAt) return undefined;
    return this.issue();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/**
 * Every answer says `Connection: close`, so node:http ends the connection once it is written. With only
 * maxRequestsPerSocket it said so too but left the socket open until its keep-alive timeout (about 6 s): a client
 * that did not close first kept its door slot that long after its answer.
 */
function oneRequestPerConnection(handler: RequestListener): RequestListener {
  return (req, res) => {
    res.setHeader('connection', 'close');
    handler(req, res);
  };
}
