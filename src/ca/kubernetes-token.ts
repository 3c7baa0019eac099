// Kubernetes projected service-account tokens as a bootstrap credential (SPEC §4; security.md A08–A10): verified
// offline with jose against the cluster's JWKS (a file, or an https URL cached by authn's JwksCache), RS256/ES256
// only, exact `iss`, our audience in `aud`, `exp` required, and the identity derived here from the token's
// `kubernetes.io` claim as spiffe://<td>/ns/<namespace>/sa/<name>. Reusable by design: no replay bookkeeping.
import { readFile } from 'node:fs/promises';
import { importJWK, type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose';
import { END_USER_DEFAULTS, JwksCache, type UsableKey, usableKeys } from '../authn/index.js';
import { MeshauthError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../identity/index.js';
import type { Logger } from '../telemetry/index.js';

/** The audience kubelet is asked to put in the token (`serviceAccountToken.audience` in the pod spec). */
export const DEFAULT_K8S_AUDIENCE = 'meshauth';
const ALGORITHMS = ['RS256', 'ES256'];
/** Projected tokens are ~1–2 KiB; this bounds what reaches base64 and JSON decoding. */
export const MAX_K8S_TOKEN_BYTES = 16 * 1024;
const CLOCK_TOLERANCE_SECONDS = 30;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Namespaces are DNS labels, service-account names DNS subdomains (Kubernetes object names). */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export type SaTokenRejection = 'sa_token_audience' | 'sa_token_unbound' | 'sa_token_invalid' | 'sa_token_expired';

export interface KubernetesTokenOptions {
  /** Exact `iss` of the cluster's service-account tokens (`kubectl get --raw /.well-known/openid-configuration`). */
  readonly issuer: string;
  /** Path of a JWKS file, or an https URL of the cluster's JWKS (fetched with undici, cached, refreshed). */
  readonly jwks: string;
  readonly audience?: string;
  readonly logger: Logger;
}

/** Three dot-separated base64url parts: a JWT, as opposed to a 43-character join token. */
export function looksLikeJwt(token: string): boolean {
  return token.length <= MAX_K8S_TOKEN_BYTES && JWT_SHAPE.test(token);
}

export class KubernetesTokenVerifier {
  readonly #issuer: string;
  readonly #audience: string;
  readonly #getKey: (kid: string | undefined, alg: string) => Promise<CryptoKey>;
  readonly #cache: JwksCache | undefined;

  private constructor(
    options: KubernetesTokenOptions,
    getKey: (kid: string | undefined, alg: string) => Promise<CryptoKey>,
    cache: JwksCache | undefined,
  ) {
    this.#issuer = options.issuer;
    this.#audience = options.audience ?? DEFAULT_K8S_AUDIENCE;
    this.#getKey = getKey;
    this.#cache = cache;
  }

  static async create(options: KubernetesTokenOptions): Promise<KubernetesTokenVerifier> {
    if (/^https?:\/\//i.test(options.jwks)) {
      const cache = new JwksCache({
        issuer: options.issuer,
        jwksUri: options.jwks,
        tunables: END_USER_DEFAULTS,
        logger: options.logger,
      });
      cache.start();
      return new KubernetesTokenVerifier(options, (kid, alg) => cache.getKey(kid, alg), cache);
    }
    const keys = await readJwksFile(options.jwks, options.logger);
    return new KubernetesTokenVerifier(options, (kid, alg) => keyFromList(keys, kid, alg), undefined);
  }

  /** The SPIFFE ID the token stands for, or MESHAUTH_ERR_CA_UNAUTHENTICATED with a SaTokenRejection reason. */
  async verify(token: string, trustDomain: TrustDomain, now: Date): Promise<SpiffeId> {
    if (!looksLikeJwt(token)) throw rejected('sa_token_invalid', 'service-account token is not a compact JWT');
    const getKey: JWTVerifyGetKey = (header) => this.#getKey(header.kid, header.alg ?? '');
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
    return identityOf(payload, trustDomain);
  }

  async close(): Promise<void> {
    await this.#cache?.close();
  }
}

/** `kubernetes.io: {namespace, serviceaccount: {name}}` is what a projected token carries; a legacy secret-based
 * token has flat `kubernetes.io/serviceaccount/...` claims instead and no `exp` (A09). */
function identityOf(payload: JWTPayload, trustDomain: TrustDomain): SpiffeId {
  const k8s = payload['kubernetes.io'];
  if (typeof k8s !== 'object' || k8s === null || Array.isArray(k8s)) {
    throw rejected('sa_token_unbound', 'token has no kubernetes.io claim (not a projected service-account token)');
  }
  const { namespace, serviceaccount } = k8s as { namespace?: unknown; serviceaccount?: unknown };
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
  return SpiffeId.forKubernetes(trustDomain, namespace, name);
}

function isProjectedShape(payload: JWTPayload): boolean {
  const k8s = payload['kubernetes.io'];
  return payload.exp !== undefined && typeof k8s === 'object' && k8s !== null && !Array.isArray(k8s);
}

function fromVerifyError(error: unknown): MeshauthError {
  if (error instanceof MeshauthError) {
    if (error.reason === 'jwks_unavailable') {
      return new MeshauthError('MESHAUTH_ERR_CA_UNAVAILABLE', 'cluster JWKS unavailable', {
        reason: 'sa_jwks_unavailable',
        cause: error,
      });
    }
    return rejected('sa_token_invalid', `no usable key: ${error.message}`, error);
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed || error instanceof joseErrors.JWTExpired) {
    // jose reports claims only after the signature checked out, so the payload is the cluster's. A legacy
    // secret-based token (no exp, no kubernetes.io object, usually no aud) is named as such whatever jose
    // tripped over first (A09).
    if (!isProjectedShape(error.payload)) {
      return rejected('sa_token_unbound', 'not a projected token (no exp or no kubernetes.io claim)', error);
    }
    if (error instanceof joseErrors.JWTExpired) return rejected('sa_token_expired', 'token expired', error);
    if (error.claim === 'aud') return rejected('sa_token_audience', 'token audience is not ours', error);
    return rejected('sa_token_invalid', `claim ${error.claim} rejected (${error.reason})`, error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return rejected('sa_token_invalid', `token rejected: ${message.slice(0, 200)}`, error);
}

async function readJwksFile(file: string, logger: Logger): Promise<readonly UsableKey[]> {
  let document: unknown;
  try {
    document = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `--k8s-jwks ${file} is not a readable JSON file`, {
      cause,
    });
  }
  let result: Awaited<ReturnType<typeof usableKeys>>;
  try {
    result = await usableKeys(document);
  } catch (cause) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `--k8s-jwks ${file} is not a JWKS`, { cause });
  }
  if (result.rejected.length > 0) logger.warn({ file, rejected: result.rejected }, 'cluster JWKS keys ignored');
  if (result.keys.length === 0) {
    throw new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', `--k8s-jwks ${file} holds no usable signing key`);
  }
  return result.keys;
}

// `kid` is only a lookup key (RFC 8725 §3.10); without one, exactly one compatible key must exist.
async function keyFromList(keys: readonly UsableKey[], kid: string | undefined, alg: string): Promise<CryptoKey> {
  const candidates = keys.filter((key) => (kid === undefined || key.kid === kid) && key.algorithms.has(alg));
  const [only] = candidates;
  if (only === undefined || candidates.length > 1) {
    throw rejected('sa_token_invalid', 'no single cluster key matches the token kid and alg');
  }
  return (await importJWK(only.jwk, alg)) as CryptoKey;
}

function rejected(reason: SaTokenRejection, message: string, cause?: unknown): MeshauthError {
  return new MeshauthError(
    'MESHAUTH_ERR_CA_UNAUTHENTICATED',
    `service-account token rejected: ${message}`,
    cause === undefined ? { reason } : { reason, cause },
  );
}
