// The CA HTTP API: POST /v1/svid (join token or Kubernetes service-account token bootstrap, or renewal
// over mTLS), POST /v1/token (JWT-SVIDs, token-endpoint.ts), GET /v1/bundle, /v1/jwks, the OIDC discovery
// document, /healthz, /metrics. The CA takes only the public key from a CSR; the identity comes from the
// credential. Every rejection is a JSON {code, message} (the OAuth error form on /v1/token),
// one metric increment and one log line, rate-limited per reason (never the token). A join token is spent only for
// an SVID actually signed: every check that can refuse comes before it is spent, and a signature that fails after
// gives it back (an answer signed but lost on the way, the connection dropped, stays spent).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { MeshauthError } from '../errors/index.js';
import { refuseCaId, type SpiffeId } from '../identity/index.js';
import { type TrustBundle, verifyCsrPem } from '../pki/index.js';
import { clientAddress } from '../platform/index.js';
import type { Logger, Metrics, RefusalLog } from '../telemetry/index.js';
import type { CaAuthority } from './authority.js';
import { IDENTITY_RATE_LIMITED, IdentityLimit } from './identity-limit.js';
import type { IdentityRateLimit } from './identity-rate-limit.js';
import { type SpentJoinToken, spendJoinToken } from './join-tokens.js';
import type { JwtKeyRing } from './jwt-key-ring.js';
import { type KubernetesTokenVerifier, looksLikeJwt, MAX_K8S_TOKEN_BYTES } from './kubernetes-token.js';
import { DISCOVERY_PATH, JWKS_PATH, openIdConfiguration, TOKEN_PATH } from './oidc-metadata.js';
import { authenticatePeer } from './peer-svid.js';
import { readBodyLimited } from './read-body.js';
import { toSpiffeBundle } from './spiffe-bundle.js';
import { issueAccessToken } from './token-endpoint.js';
import { oauthErrorBody } from './token-request.js';

export const MAX_BODY_BYTES = 64 * 1024;
/** How often clients should fetch the bundle (`spiffe_refresh_hint`) unless `ca serve --bundle-refresh-hint` says
 * otherwise; an agent refreshes this often until its first fetch tells it the CA's hint. */
export const BUNDLE_REFRESH_HINT_SECONDS = 300;

const SvidRequest = z.object({
  csr: z.string().min(1).max(MAX_BODY_BYTES),
  // A join token is 43 characters; a projected service-account token 1–2 KiB.
  token: z.string().max(MAX_K8S_TOKEN_BYTES).optional(),
  // The SPIFFE ID the caller expects: when sent, it must be the credential's (never a way to choose one).
  id: z.string().max(2048).optional(),
});

export interface CaApiOptions {
  readonly dir: string;
  readonly authority: CaAuthority;
  /** Signs X509-SVIDs instead of `authority` (the worker pool of `ca serve --workers`); same checks, same result. */
  readonly signer?: Pick<CaAuthority, 'issue'>;
  readonly svidTtlMs: number;
  /** The key that signs JWT-SVIDs (`POST /v1/token`) and every key published at `GET /v1/jwks`. */
  readonly jwtKeys: JwtKeyRing;
  /** `iss` of JWT-SVIDs and base of the discovery document's URLs. */
  readonly issuer: string;
  readonly jwtTtlMs: number;
  /** Accepts Kubernetes service-account tokens on `POST /v1/svid` when set (`ca serve --k8s-issuer`). */
  readonly kubernetes?: KubernetesTokenVerifier;
  /** False for a Kubernetes CA serving from a directory with no join-token store (a read-only Secret). */
  readonly joinTokens: boolean;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /**
   * The `ca_request_rejected` lines, only the first ones per reason per interval: anyone who reaches the CA can
   * repeat a refused request in a loop. Shared with node-refusals.ts, which refuses on the same server.
   */
  readonly rejectionLog: RefusalLog;
  readonly now: () => Date;
  /** Per-identity CSR limit (identity-rate-limit.ts); its defaults when omitted. */
  readonly identityRateLimit?: IdentityRateLimit;
  /** `spiffe_refresh_hint` of GET /v1/bundle, which agents follow (`ca serve --bundle-refresh-hint`). */
  readonly bundleRefreshHintSeconds?: number;
  /** Per-identity JWT-SVID limit, buckets of its own; the same defaults when omitted. */
  readonly jwtIdentityRateLimit?: IdentityRateLimit;
}

/** What one request learned that its failure's log line must carry. */
interface RequestNotes {
  /** Set when the request spent a join token and then failed: whether the token was given back. */
  joinTokenRestored?: boolean;
}

/** The per-identity limits of one CA handler, one per issuing endpoint. */
interface IdentityLimits {
  readonly svid: IdentityLimit;
  readonly jwt: IdentityLimit;
}

export function createCaRequestHandler(options: CaApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const telemetry = { logger: options.logger, metrics: options.metrics };
  // Separate buckets: a workload fetching JWT-SVIDs (one per audience, each living minutes) must never spend the
  // budget its agent needs to renew the X509-SVID, without which it loses its mesh identity altogether.
  const limits: IdentityLimits = {
    svid: new IdentityLimit({
      what: 'SVID',
      event: 'ca_identity_rate_limited',
      ...(options.identityRateLimit === undefined ? {} : { buckets: options.identityRateLimit }),
      ...telemetry,
    }),
    jwt: new IdentityLimit({
      what: 'JWT-SVID',
      event: 'ca_jwt_identity_rate_limited',
      ...(options.jwtIdentityRateLimit === undefined ? {} : { buckets: options.jwtIdentityRateLimit }),
      refusalDetail: { oauthError: 'temporarily_unavailable' },
      ...telemetry,
    }),
  };
  return (req, res) => {
    const notes: RequestNotes = {};
    route(options, req, res, limits, notes).catch((error: unknown) => {
      const restored = notes.joinTokenRestored === undefined ? {} : { joinTokenRestored: notes.joinTokenRestored };
      // A 503 of the cluster (JWKS, TokenReview), of an intermediate that cannot sign now or of a connection closed
      // before the signature is a named rejection too: its reason is the operator's clue.
      const named =
        error instanceof MeshauthError &&
        (error.status < 500 || /^(sa_|intermediate_|connection_closed$)/.test(error.reason ?? ''));
      if (error instanceof MeshauthError && error.status > 0 && named) {
        rejectCaRequest(options, req, res, error, error.reason ?? 'bad_request', restored);
        return;
      }
      options.logger.error(
        { event: 'ca_request_failed', err: error, path: pathOf(req), ...restored },
        'CA request failed',
      );
      rejectCaRequest(
        options,
        req,
        res,
        new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', 'internal error', { reason: 'internal' }),
        'internal',
        restored,
      );
    });
  };
}

async function route(
  options: CaApiOptions,
  req: IncomingMessage,
  res: ServerResponse,
  limits: IdentityLimits,
  notes: RequestNotes,
): Promise<void> {
  const path = pathOf(req);
  const method = req.method ?? 'GET';
  const allowed = ALLOWED_METHODS[path];
  if (allowed === undefined) {
    throw new MeshauthError('MESHAUTH_ERR_CA_NOT_FOUND', `no such path ${path.slice(0, 100)}`, { reason: 'not_found' });
  }
  if (!allowed.includes(method)) {
    res.setHeader('allow', allowed.join(', '));
    throw new MeshauthError('MESHAUTH_ERR_CA_METHOD_NOT_ALLOWED', `${method.slice(0, 20)} not allowed on ${path}`, {
      reason: 'method_not_allowed',
    });
  }
  if (refusedTransferCoding(req)) {
    throw new MeshauthError('MESHAUTH_ERR_CA_BAD_REQUEST', 'transfer coding besides chunked', {
      reason: 'transfer_encoding',
    });
  }
  await Promise.all([options.authority.refresh(), options.jwtKeys.refresh()]);
  switch (path) {
    case '/v1/svid':
      return issueSvid(options, req, res, limits.svid, notes);
    case TOKEN_PATH:
      return issueAccessToken(
        { ...options, signingKey: options.jwtKeys.signingKey(options.now()), limit: limits.jwt },
        req,
        res,
      );
    case '/v1/bundle':
      return sendBundle(options, req, res);
    case JWKS_PATH:
      return sendJson(res, 200, options.jwtKeys.jwks(options.now()));
    case DISCOVERY_PATH:
      return sendJson(res, 200, openIdConfiguration(options.issuer));
    case '/healthz':
      return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    default: {
      const text = await options.metrics.pacedExposition();
      return send(res, 200, options.metrics.contentType, text);
    }
  }
}

/**
 * A transfer coding besides chunked. llhttp takes any coding list ending in chunked as chunked and hands the body over
 * undecoded: a body declared gzip would be read as plain JSON, and a proxy in front that decodes it would see another
 * body than the CA. Refused before the body is read or the request queued (load-shedding.ts asks too).
 */
export function refusedTransferCoding(req: IncomingMessage): boolean {
  const coding = req.headers['transfer-encoding'];
  return coding !== undefined && coding.trim().toLowerCase() !== 'chunked';
}

const ALLOWED_METHODS: Readonly<Record<string, readonly string[]>> = {
  '/v1/svid': ['POST'],
  [TOKEN_PATH]: ['POST'],
  '/v1/bundle': ['GET', 'HEAD'],
  [JWKS_PATH]: ['GET', 'HEAD'],
  [DISCOVERY_PATH]: ['GET', 'HEAD'],
  '/healthz': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
};

async function issueSvid(
  options: CaApiOptions,
  req: IncomingMessage,
  res: ServerResponse,
  limit: IdentityLimit,
  notes: RequestNotes,
): Promise<void> {
  const mediaType = (req.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new MeshauthError('MESHAUTH_ERR_CA_UNSUPPORTED_MEDIA_TYPE', 'content type is not application/json', {
      reason: 'unsupported_media_type',
    });
  }
  const body = parseSvidRequest(await readBodyLimited(req, MAX_BODY_BYTES));
  let csr: Awaited<ReturnType<typeof verifyCsrPem>>;
  try {
    csr = await verifyCsrPem(body.csr);
  } catch (error) {
    if (error instanceof MeshauthError) {
      throw new MeshauthError(error.code, error.message, { reason: `csr_${error.reason ?? 'invalid'}`, cause: error });
    }
    throw error;
  }
  const now = options.now();
  options.authority.assertCanSign(now);
  const asked = (id: SpiffeId, method: SvidMethod) => {
    // Refused for any credential, before a join token is spent.
    refuseCaId(id, options.authority.material.trustDomain);
    if (body.id !== undefined && body.id !== id.toString()) {
      throw new MeshauthError(
        'MESHAUTH_ERR_CA_IDENTITY_MISMATCH',
        `the request asks for ${body.id.slice(0, 200)} but the ${method} credential stands for ${id}`,
        { reason: 'identity_mismatch' },
      );
    }
  };
  const { id, method, spent, confirm } = await authenticateSvidRequest(options, req, body.token, now, (joinId) => {
    asked(joinId, 'join_token');
    refuseClosedConnection(req, res);
  });
  let issued: Awaited<ReturnType<CaAuthority['issue']>>;
  try {
    asked(id, method);
    // After authentication (the identity is the credential's, never one the caller names) and before the signature.
    // A join token is not limited: it is single-use, and refusing it here would spend it for nothing.
    if (confirm !== undefined) {
      // A service-account token's TokenReview: a pod replaying its token past its identity's budget, or asking for an
      // identity not its own, is refused before it costs an API-server call; the request is charged only once the
      // review passed, so a revoked token (its pod deleted) replayed in a loop never spends the budget that every
      // live pod of its service account shares.
      limit.check(id, now, res, { method });
      await confirm();
    }
    if (method !== 'join_token') limit.admit(id, now, res, { method });
    // Its spending (or its review) took I/O: the client may have left, or the CA closed it to shut down, meanwhile.
    refuseClosedConnection(req, res);
    issued = await (options.signer ?? options.authority).issue({
      id,
      publicKey: csr.spki,
      ttlMs: options.svidTtlMs,
      now,
    });
  } catch (error) {
    // No SVID was issued: a token spent for it would be lost to a workload that retries with the only one it has.
    if (spent !== undefined) notes.joinTokenRestored = await spent.giveBack();
    throw error;
  }
  options.metrics.caSvidsIssued.inc({ method });
  options.logger.info(
    {
      event: 'svid_issued',
      method,
      spiffeId: id.toString(),
      serial: issued.serialNumber,
      keyType: csr.keyType,
      expiresAt: issued.expiresAt.toISOString(),
    },
    'SVID issued',
  );
  sendJson(res, 200, {
    certChain: issued.certChainPem,
    bundle: issued.bundlePem,
    expiresAt: issued.expiresAt.toISOString(),
  });
}

function parseSvidRequest(raw: Buffer): z.infer<typeof SvidRequest> {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CA_BAD_REQUEST', 'request body is not valid JSON', {
      reason: 'malformed_json',
      cause,
    });
  }
  const parsed = SvidRequest.safeParse(json);
  if (!parsed.success) {
    throw new MeshauthError('MESHAUTH_ERR_CA_BAD_REQUEST', 'request body must be {"csr": PEM, "token"?, "id"?}', {
      reason: 'bad_request_body',
    });
  }
  return parsed.data;
}

type SvidMethod = 'renewal' | 'join_token' | 'k8s_sa_token';

/**
 * Refuses to go on for a connection already closed (the client gave up, or the CA closed it to shut down): an SVID
 * signed now would reach no one, and a join token spent for it would be lost.
 */
function refuseClosedConnection(req: IncomingMessage, res: ServerResponse): void {
  if (res.destroyed || req.socket.destroyed) {
    throw new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', 'the connection closed before the SVID was signed', {
      reason: 'connection_closed',
    });
  }
}

/**
 * Who the new SVID is for: the bootstrap token's identity, or (no token) the client certificate's (renewal).
 * `checkJoinId` sees a join token's identity before the token is spent; `spent` gives a join token back; `confirm`
 * (a service-account token) is the TokenReview still to pass before anything is signed.
 */
async function authenticateSvidRequest(
  options: CaApiOptions,
  req: IncomingMessage,
  token: string | undefined,
  now: Date,
  checkJoinId: (id: SpiffeId) => void,
): Promise<{ id: SpiffeId; method: SvidMethod; spent?: SpentJoinToken; confirm?: () => Promise<void> }> {
  if (token === undefined) {
    const id = authenticatePeer(req, options.authority.material, now, 'no token').id;
    // The agent then renews as it bootstraps, with the pod's current token: a deleted pod's is refused.
    if (options.kubernetes?.renewsWithToken === true) {
      throw new MeshauthError(
        'MESHAUTH_ERR_CA_RENEWAL_TOKEN_REQUIRED',
        "this CA renews an SVID only with a service-account token (--k8s-renew-with-token): send the pod's token",
        { reason: 'renewal_token_required' },
      );
    }
    return { id, method: 'renewal' };
  }
  // A JWT is never a join token (43 base64url characters, no dots): without --k8s-issuer it is just unknown.
  if (looksLikeJwt(token) && options.kubernetes !== undefined) {
    const kubernetes = options.kubernetes;
    const verified = await kubernetes.verifyOffline(token, options.authority.material.trustDomain, now);
    return { id: verified.identity.id, method: 'k8s_sa_token', confirm: () => kubernetes.review(verified, now) };
  }
  if (!options.joinTokens) {
    throw new MeshauthError(
      'MESHAUTH_ERR_CA_JOIN_TOKENS_DISABLED',
      'this CA accepts only Kubernetes service-account tokens: its directory has no join-token store',
      { reason: 'join_tokens_disabled' },
    );
  }
  const spent = await spendJoinToken(options.dir, token, now, checkJoinId);
  return { id: spent.id, method: 'join_token', spent };
}

function sendBundle(options: CaApiOptions, req: IncomingMessage, res: ServerResponse): void {
  const bundle = options.authority.material.bundle;
  if ((req.headers.accept ?? '').toLowerCase().includes('application/x-pem-file')) {
    send(res, 200, 'application/x-pem-file', bundle.toPem());
    return;
  }
  send(
    res,
    200,
    'application/json',
    bundleDocument(bundle, options.bundleRefreshHintSeconds ?? BUNDLE_REFRESH_HINT_SECONDS),
  );
}

const bundleDocuments = new WeakMap<TrustBundle, { readonly refreshHintSeconds: number; readonly body: string }>();

/**
 * GET /v1/bundle's JSON, written once per bundle: every workload fetches it every few minutes, a bundle never
 * changes (a rotation installs a new one), and each JWK costs a key import and export.
 */
function bundleDocument(bundle: TrustBundle, refreshHintSeconds: number): string {
  const cached = bundleDocuments.get(bundle);
  if (cached?.refreshHintSeconds === refreshHintSeconds) return cached.body;
  const body = `${JSON.stringify({ bundle: bundle.toPemList(), spiffe: toSpiffeBundle(bundle, refreshHintSeconds) })}\n`;
  bundleDocuments.set(bundle, { refreshHintSeconds, body });
  return body;
}

/** Where a refused request came from, for its log line. */
export interface RejectedRequest {
  readonly method: string | undefined;
  readonly path?: string | undefined;
  readonly remote: string | undefined;
  /** Node's parser code, for a request node:http refused before the handler (node-refusals.ts). */
  readonly parserCode?: string | undefined;
  /** Whether the join token this request spent was given back (set only when it spent one and failed). */
  readonly joinTokenRestored?: boolean | undefined;
}

/** The telemetry a refusal needs: its counter and its rate-limited line. */
export type CaRejectionTelemetry = Pick<CaApiOptions, 'metrics' | 'rejectionLog'>;

/**
 * Counts a refused request in meshauth_ca_requests_rejected_total{reason} and writes its `ca_request_rejected` line,
 * if it is one of the first of its reason in the interval (the others counted as suppressed and summed up).
 */
export function recordCaRejection(
  telemetry: CaRejectionTelemetry,
  error: MeshauthError,
  reason: string,
  request: RejectedRequest,
): void {
  telemetry.metrics.caRequestsRejected.inc({ reason });
  // Logged where it was refused, at most once per interval (a flood would otherwise write a line per request).
  if (reason === IDENTITY_RATE_LIMITED) return;
  telemetry.rejectionLog.warn(reason, { code: error.code, ...request }, error.message);
}

/** Refuses a request the handler has: counted, logged, the JSON error (the OAuth one on the token endpoint). */
export function rejectCaRequest(
  telemetry: CaRejectionTelemetry,
  req: IncomingMessage,
  res: ServerResponse,
  error: MeshauthError,
  reason: string,
  notes: Pick<RejectedRequest, 'joinTokenRestored'> = {},
): void {
  recordCaRejection(telemetry, error, reason, {
    method: req.method,
    path: pathOf(req).slice(0, 100),
    remote: clientAddress(req.socket.remoteAddress),
    ...notes,
  });
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // OAuth clients expect {error, error_description}; `code` keeps our registry code next to it.
  sendJson(res, error.status, pathOf(req) === TOKEN_PATH ? oauthErrorBody(error) : error.toJSON());
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(body)}\n`);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
