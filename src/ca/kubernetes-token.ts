// Kubernetes projected service-account tokens as a bootstrap credential: verified
// with jose against the cluster's keys (cluster-jwks.ts: a file reloaded on change, or an https URL), RS256/ES256
// only, exact `iss`, our audience in `aud`, `exp` required, the identity derived from the token's `kubernetes.io`
// claim as spiffe://<td>/ns/<namespace>/sa/<name>; then, with `--k8s-token-review`, confirmed by the API server's
// TokenReview, which knows whether the pod the token is bound to still exists. Reusable by design: no replay
// bookkeeping (the kubelet hands the same token to every restart of the pod's containers); only a TokenReview's
// "not authenticated" is remembered, briefly (token-review-memo.ts).
import { decodeJwt, type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose';
import { type ErrorCode, errorMessage, MeshauthError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../identity/index.js';
import type { Logger } from '../telemetry/index.js';
import { ClusterApiClient, ClusterApiError, DEFAULT_K8S_API_SERVER } from './cluster-api-client.js';
import { type ClusterKeySource, isJwksUrl, JwksFileKeys, RemoteJwksKeys } from './cluster-jwks.js';
import { judgeTokenReview, TOKEN_REVIEW_PATH, tokenReviewRequest } from './token-review-judge.js';
import { TokenReviewMemo } from './token-review-memo.js';

/** The audience kubelet is asked to put in the token (`serviceAccountToken.audience` in the pod spec). */
export const DEFAULT_K8S_AUDIENCE = 'meshauth';
const ALGORITHMS = ['RS256', 'ES256'];
/** Projected tokens are ~1–2 KiB; this bounds what reaches base64 and JSON decoding. */
export const MAX_K8S_TOKEN_BYTES = 16 * 1024;
const CLOCK_TOLERANCE_SECONDS = 30;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Namespaces are DNS labels, service-account names DNS subdomains (Kubernetes object names). */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export type SaTokenRejection =
  | 'sa_token_audience'
  | 'sa_token_unbound'
  | 'sa_token_invalid'
  | 'sa_token_expired'
  | 'sa_token_issuer'
  | 'sa_token_review_denied'
  | 'sa_token_review_audience';

const CODES: Readonly<Record<SaTokenRejection, ErrorCode>> = {
  sa_token_audience: 'MESHAUTH_ERR_CA_SA_TOKEN_AUDIENCE',
  sa_token_expired: 'MESHAUTH_ERR_CA_SA_TOKEN_EXPIRED',
  sa_token_issuer: 'MESHAUTH_ERR_CA_SA_TOKEN_ISSUER',
  sa_token_review_denied: 'MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED',
  sa_token_review_audience: 'MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED',
  sa_token_unbound: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
  sa_token_invalid: 'MESHAUTH_ERR_CA_UNAUTHENTICATED',
};

export interface KubernetesTokenOptions {
  /** Exact `iss` of the cluster's service-account tokens (`kubectl get --raw /.well-known/openid-configuration`). */
  readonly issuer: string;
  /** Path of a JWKS file (reloaded when it changes), or an https URL; omitted: the issuer's discovery document. */
  readonly jwks?: string;
  readonly audience?: string;
  /** Cluster CA for https to the issuer, the JWKS URL and the API server (`--k8s-ca-file`). */
  readonly caFile?: string;
  /** The CA's own service-account token, the bearer for the API server (`--k8s-token-file`). */
  readonly tokenFile?: string;
  /** `--k8s-api-server`, default https://kubernetes.default.svc. */
  readonly apiServer?: string;
  /** Ask the API server's TokenReview about every token that verified offline (`--k8s-token-review`). */
  readonly tokenReview?: boolean;
  /**
   * Renew only with a service-account token, never with the SVID alone (`--k8s-renew-with-token`): a deleted pod's
   * token is refused (with TokenReview, at once), so a copy of its SVID and key cannot be renewed on for ever.
   */
  readonly renewWithToken?: boolean;
  /** How long a call to the API server or the issuer may take (default 5 s). */
  readonly apiTimeoutMs?: number;
  readonly logger: Logger;
}

/** What a verified token says about the pod. */
export interface ServiceAccountIdentity {
  readonly id: SpiffeId;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string | undefined;
}

/** A token whose signature and claims checked out, before its TokenReview. */
export interface OfflineVerifiedToken {
  readonly identity: ServiceAccountIdentity;
  readonly token: string;
  readonly podUid: string | undefined;
  /** The token's `exp`: a TokenReview's denial of it is remembered until then at most. */
  readonly expiresAt: Date;
}

/** Three dot-separated base64url parts: a JWT, as opposed to a 43-character join token. */
export function looksLikeJwt(token: string): boolean {
  return token.length <= MAX_K8S_TOKEN_BYTES && JWT_SHAPE.test(token);
}

/**
 * True when every segment is written the one way base64url writes its bytes. The last character of a segment whose
 * length is not a multiple of four has bits no decoder reads: up to 16 spellings verify as one token, and each would
 * be another token to the review memo and the review in progress (token-review-memo.ts). The API server writes
 * tokens canonically.
 */
export function isCanonicalJwt(token: string): boolean {
  for (const segment of token.split('.')) {
    if (Buffer.from(segment, 'base64url').toString('base64url') !== segment) return false;
  }
  return true;
}

export class KubernetesTokenVerifier {
  readonly #issuer: string;
  readonly #audience: string;
  readonly #keys: ClusterKeySource;
  readonly #client: ClusterApiClient;
  readonly #reviewUrl: string | undefined;
  readonly #reviews = new TokenReviewMemo();
  readonly #logger: Logger;
  /** `--k8s-renew-with-token`: a renewal over mTLS alone is refused (api.ts), the agent renews with its token. */
  readonly renewsWithToken: boolean;

  private constructor(options: KubernetesTokenOptions, keys: ClusterKeySource, client: ClusterApiClient) {
    this.#issuer = options.issuer;
    this.#audience = options.audience ?? DEFAULT_K8S_AUDIENCE;
    this.#keys = keys;
    this.#client = client;
    const apiServer = (options.apiServer ?? DEFAULT_K8S_API_SERVER).replace(/\/+$/, '');
    this.#reviewUrl = options.tokenReview === true ? `${apiServer}${TOKEN_REVIEW_PATH}` : undefined;
    this.renewsWithToken = options.renewWithToken === true;
    this.#logger = options.logger;
  }

  static async create(options: KubernetesTokenOptions): Promise<KubernetesTokenVerifier> {
    const apiServer = options.apiServer ?? DEFAULT_K8S_API_SERVER;
    const client = new ClusterApiClient({
      ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
      ...(options.tokenFile === undefined ? {} : { tokenFile: options.tokenFile }),
      // The API server and the issuer (in a cluster, the same server under another name) may see the CA's token.
      bearerOrigins: [apiServer, ...(/^https?:\/\//.test(options.issuer) ? [options.issuer] : [])],
      ...(options.apiTimeoutMs === undefined ? {} : { timeoutMs: options.apiTimeoutMs }),
    });
    const keys =
      options.jwks !== undefined && !isJwksUrl(options.jwks)
        ? await JwksFileKeys.open(options.jwks, options.logger)
        : new RemoteJwksKeys({
            issuer: options.issuer,
            ...(options.jwks === undefined ? {} : { jwksUrl: options.jwks }),
            client,
            logger: options.logger,
          });
    return new KubernetesTokenVerifier(options, keys, client);
  }

  /**
   * The identity the token stands for, from what the token itself proves (signature, claims), or a MeshauthError
   * whose reason is a SaTokenRejection. No call to the API server: api.ts refuses what it can (the identity asked for,
   * the per-identity limit) before `review` costs one, so a token replayed in a loop is not one API call per request.
   * A token the API server just said is not authenticated is refused again at once, as then (token-review-memo.ts).
   */
  async verifyOffline(token: string, trustDomain: TrustDomain, now: Date): Promise<OfflineVerifiedToken> {
    if (!looksLikeJwt(token)) throw rejected('sa_token_invalid', 'service-account token is not a compact JWT');
    if (!isCanonicalJwt(token)) throw rejected('sa_token_invalid', 'service-account token is not canonical base64url');
    const denied = this.#reviews.denial(token, now.getTime());
    if (denied !== undefined) throw denied;
    // Another issuer's token is named as such before any key lookup: a flood of foreign tokens costs no JWKS fetch.
    // (Unverified claims may only ever lead to a rejection.)
    const claimed = unverifiedPayload(token);
    if (typeof claimed?.iss === 'string' && claimed.iss !== this.#issuer) {
      throw isProjectedShape(claimed)
        ? rejected('sa_token_issuer', 'token is from another issuer')
        : rejected('sa_token_unbound', 'not a projected token (no exp or no kubernetes.io claim)');
    }
    const getKey: JWTVerifyGetKey = (header) => this.#keys.getKey(header.kid, header.alg ?? '');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms: ALGORITHMS,
        issuer: this.#issuer,
        audience: this.#audience,
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: now,
      }));
    } catch (error) {
      throw fromVerifyError(error);
    }
    // jose checks iat only against a maximum age; the API server itself refuses a token issued in the future, and
    // exp alone does not bound how far ahead it was minted.
    if (typeof payload.iat === 'number' && payload.iat > now.getTime() / 1000 + CLOCK_TOLERANCE_SECONDS) {
      throw rejected('sa_token_invalid', 'token is issued in the future (iat)');
    }
    return {
      identity: identityOf(payload, trustDomain),
      token,
      podUid: podUidOf(payload),
      expiresAt: new Date((payload.exp ?? 0) * 1000), // jose required a numeric exp
    };
  }

  /**
   * With `--k8s-token-review`, the API server's word that the token (and the pod it is bound to) is still valid;
   * without, nothing to do. Never skipped by the caller: the identity is only accepted after it. Requests with the
   * same token share one review in progress; the API server's no is remembered for a while (token-review-memo.ts).
   */
  async review(verified: OfflineVerifiedToken, now: Date): Promise<void> {
    if (this.#reviewUrl === undefined) return;
    await this.#reviews.review(verified.token, verified.expiresAt.getTime(), now.getTime(), () =>
      this.#review(verified.token, verified.identity, verified.podUid),
    );
  }

  async close(): Promise<void> {
    await this.#keys.close();
    await this.#client.close();
  }

  /**
   * Undefined when the API server confirmed the token; the denial to remember when it said the token is not
   * authenticated. Throws any other refusal (an answer the CA refuses, which a fix on the cluster's side can change)
   * and the 503 when it gave no verdict: neither is remembered.
   */
  async #review(
    token: string,
    identity: ServiceAccountIdentity,
    podUid: string | undefined,
  ): Promise<MeshauthError | undefined> {
    const url = this.#reviewUrl as string;
    let answer: Awaited<ReturnType<ClusterApiClient['postJson']>>;
    try {
      answer = await this.#client.postJson(url, tokenReviewRequest(token, this.#audience));
    } catch (error) {
      throw reviewUnavailable(error instanceof ClusterApiError ? error.message : String(error), error);
    }
    if (answer.status === 401 || answer.status === 403) {
      // Our own credentials: the CA's service account lacks `create tokenreviews` (ClusterRole system:auth-delegator).
      throw reviewUnavailable(
        `the API server refused the CA's TokenReview (HTTP ${answer.status}): bind the CA's service account to ` +
          'a role allowing create on tokenreviews.authentication.k8s.io',
      );
    }
    if (answer.status !== 200 && answer.status !== 201) {
      throw reviewUnavailable(`TokenReview answered HTTP ${answer.status}`);
    }
    const verdict = judgeTokenReview(answer.json, {
      namespace: identity.namespace,
      serviceAccount: identity.serviceAccount,
      audience: this.#audience,
      ...(podUid === undefined ? {} : { podUid }),
    });
    if (verdict.ok) return undefined;
    if (!verdict.denied) throw reviewUnavailable(verdict.why);
    this.#logger.debug({ event: 'k8s_token_review_denied', spiffeId: identity.id.toString(), why: verdict.why });
    const denial = rejected(verdict.reason, `TokenReview: ${verdict.why}`);
    if (verdict.unauthenticated === true) return denial;
    throw denial;
  }
}

/** `kubernetes.io: {namespace, serviceaccount: {name}}` is what a projected token carries; a legacy secret-based
 * token has flat `kubernetes.io/serviceaccount/...` claims instead and no `exp` (A09). */
function identityOf(payload: JWTPayload, trustDomain: TrustDomain): ServiceAccountIdentity {
  const k8s = payload['kubernetes.io'];
  if (typeof k8s !== 'object' || k8s === null || Array.isArray(k8s)) {
    throw rejected('sa_token_unbound', 'token has no kubernetes.io claim (not a projected service-account token)');
  }
  const { namespace, serviceaccount, pod } = k8s as { namespace?: unknown; serviceaccount?: unknown; pod?: unknown };
  const name = (serviceaccount as { name?: unknown } | null | undefined)?.name;
  if (typeof namespace !== 'string' || typeof name !== 'string') {
    throw rejected('sa_token_unbound', 'kubernetes.io claim lacks namespace or serviceaccount.name');
  }
  if (!K8S_NAME.test(namespace) || namespace.length > 63 || !K8S_NAME.test(name)) {
    throw rejected('sa_token_invalid', 'namespace or service-account name is not a Kubernetes name');
  }
  // The API server writes both; disagreement means the token was not minted by it.
  if (payload.sub !== `system:serviceaccount:${namespace}:${name}`) {
    throw rejected('sa_token_invalid', 'sub does not match the kubernetes.io claim');
  }
  const podName = (pod as { name?: unknown } | null | undefined)?.name;
  return {
    id: SpiffeId.forKubernetes(trustDomain, namespace, name),
    namespace,
    serviceAccount: name,
    podName: typeof podName === 'string' ? podName.slice(0, 253) : undefined,
  };
}

function podUidOf(payload: JWTPayload): string | undefined {
  const uid = (payload['kubernetes.io'] as { pod?: { uid?: unknown } } | undefined)?.pod?.uid;
  return typeof uid === 'string' ? uid : undefined;
}

function unverifiedPayload(token: string): JWTPayload | undefined {
  try {
    return decodeJwt(token);
  } catch {
    return undefined; // jwtVerify names the malformation
  }
}

function isProjectedShape(payload: JWTPayload): boolean {
  const k8s = payload['kubernetes.io'];
  return payload.exp !== undefined && typeof k8s === 'object' && k8s !== null && !Array.isArray(k8s);
}

function fromVerifyError(error: unknown): MeshauthError {
  if (error instanceof MeshauthError) return error; // from the key source: no key, or no key set at all
  if (error instanceof joseErrors.JWTClaimValidationFailed || error instanceof joseErrors.JWTExpired) {
    // jose reports claims only after the signature checked out, so the payload is the cluster's. A legacy
    // secret-based token (no exp, no kubernetes.io object, usually no aud) is named as such whatever jose
    // tripped over first (A09).
    if (!isProjectedShape(error.payload)) {
      return rejected('sa_token_unbound', 'not a projected token (no exp or no kubernetes.io claim)', error);
    }
    if (error instanceof joseErrors.JWTExpired) return rejected('sa_token_expired', 'token expired', error);
    if (error.claim === 'aud') return rejected('sa_token_audience', 'token audience is not ours', error);
    if (error.claim === 'iss') return rejected('sa_token_issuer', 'token is from another issuer', error);
    return rejected('sa_token_invalid', `claim ${error.claim} rejected (${error.reason})`, error);
  }
  const message = errorMessage(error);
  return rejected('sa_token_invalid', `token rejected: ${message.slice(0, 200)}`, error);
}

function rejected(reason: SaTokenRejection, message: string, cause?: unknown): MeshauthError {
  return new MeshauthError(
    CODES[reason],
    `service-account token rejected: ${message}`,
    cause === undefined ? { reason } : { reason, cause },
  );
}

/** Fail closed: without the API server's answer no token is accepted (503, the sidecar retries). */
function reviewUnavailable(message: string, cause?: unknown): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_CA_UNAVAILABLE',
    `TokenReview unavailable: ${message}`,
    cause === undefined ? { reason: 'sa_token_review_unavailable' } : { reason: 'sa_token_review_unavailable', cause },
  );
}
