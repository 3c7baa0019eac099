// Verifies end-user bearer JWTs from the configured issuers: shape
// checks first, then the issuer named by the unverified `iss` (only configured ones; an unknown issuer is an
// invalid token, not an absent one, or a forged `iss` would skip validation), its key, then jose's jwtVerify with
// explicit rules.
// One metric increment and, for a rejection, one log line per token; the token itself is never logged.
import { errors, jwtVerify } from 'jose';
import { isMeshauthError, MeshauthError } from '../errors/index.js';
import { type Logger, type Metrics, silentLogger } from '../telemetry/index.js';
import { checkClaimBytes } from './claim-size.js';
import { type EndUser, endUserFromClaims } from './end-user.js';
import {
  type EndUserConfig,
  type EndUserConfigOrigin,
  type EndUserIssuerConfig,
  type EndUserTunables,
  endUserIssuerKey,
  resolveEndUserTunables,
  validateEndUserConfig,
} from './end-user-config.js';
import { extractBearer, type RequestHeaders } from './extract-bearer.js';
import { JwksCache } from './jwks-cache.js';
import { expiredForPassport } from './passport/mint-passport.js';
import { checkTokenLifetime } from './token-lifetime.js';
import { type TokenRejectionDetail, type TokenRejectionReason, tokenInvalid } from './token-rejection.js';
import { forLog, inspectToken } from './token-shape.js';

/** What the caller does with the user of a verified token. */
export interface VerifyOptions {
  /**
   * An origin passport is minted for the user. A token past its `exp`, though within the clock skew, is then refused
   * as `expired` (counted once, as that): the passport never outlives the token, so it would be expired from the
   * start. Without it the skew applies to `exp` too (a forwarded original token beside a passport).
   */
  readonly forPassport?: boolean;
  /**
   * Refuse, as `claims_too_large`, a user whose claims are over this many bytes (checkClaimBytes): the sidecar's
   * vouchers. Counted as that, not as `ok`.
   */
  readonly maxClaimBytes?: number;
}

export interface EndUserVerifierOptions {
  readonly config: EndUserConfig;
  /** The file and keys the settings came from, named by a refusal (default: the sidecar's inbound.endUser). */
  readonly origin?: EndUserConfigOrigin;
  readonly tunables?: Partial<EndUserTunables>;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  /** Milliseconds since the epoch; tests inject it to move token time and JWKS cooldowns. */
  readonly now?: () => number;
}

interface IssuerRules {
  readonly config: EndUserIssuerConfig;
  readonly algorithms: ReadonlySet<string>;
  readonly cache: JwksCache;
}

/** A token that passed every check, with what a later request must check again: the key and the times. */
interface VerifiedToken {
  readonly rules: IssuerRules;
  readonly kid: string | undefined;
  readonly alg: string;
  /** The key it verified with: another one (the issuer's key set was read again, or the key left it) means no reuse. */
  readonly key: CryptoKey;
  readonly user: EndUser;
  readonly exp: number;
  readonly nbf: number | undefined;
  readonly iat: number | undefined;
}

/**
 * Verified tokens kept by their text. A client sends the same token with every request until it expires, and a full
 * verification (jose's asynchronous WebCrypto check, the shape checks) costs 120–240 µs of CPU where a lookup costs
 * one or two: the token's content decides every check but the key and the time, and those are checked again on each
 * use. Bounded by count and token size (4 MiB of tokens, with their users and the origins minted for them); a full
 * map lets its oldest entry go.
 */
const MAX_VERIFIED_TOKENS = 1024;
const MAX_KEPT_TOKEN_BYTES = 4096;

// Without a configured `typ`, accept the generic JWT types and OAuth access tokens (at+jwt) only, so tokens of an
// explicitly different kind (e.g. a mesh passport) never validate as end-user tokens (J15).
const DEFAULT_TYPS: ReadonlySet<string> = new Set(['application/jwt', 'application/jose', 'application/at+jwt']);

function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.includes('/') ? lower : `application/${lower}`;
}

export class EndUserVerifier {
  readonly required: boolean;
  readonly #config: EndUserConfig;
  readonly #tunables: EndUserTunables;
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #now: () => number;
  readonly #issuers = new Map<string, IssuerRules>();
  readonly #verified = new Map<string, VerifiedToken>();

  /** Throws MESHAUTH_ERR_CONFIG_INVALID for unsafe settings (HS*, none, no audience, plain-http JWKS…). */
  constructor(options: EndUserVerifierOptions) {
    validateEndUserConfig(options.config, options.origin);
    this.#config = options.config;
    this.#tunables = resolveEndUserTunables(options.tunables);
    this.#logger = options.logger ?? silentLogger();
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
    this.required = options.config.required;
    for (const [index, issuer] of options.config.issuers.entries()) {
      const cache = new JwksCache({
        issuer: issuer.issuer,
        ...(issuer.jwksUri === undefined ? {} : { jwksUri: issuer.jwksUri }),
        ...(issuer.caFile === undefined
          ? {}
          : { caFile: issuer.caFile, caFileKey: endUserIssuerKey(options.origin ?? {}, index, 'caFile') }),
        tunables: this.#tunables,
        logger: this.#logger,
        ...(this.#metrics === undefined ? {} : { metrics: this.#metrics }),
        now: this.#now,
      });
      this.#issuers.set(issuer.issuer, { config: issuer, algorithms: new Set(issuer.algorithms), cache });
    }
  }

  /** Prefetches every issuer's keys and starts their background refresh (optional: verify() fetches lazily). */
  start(): void {
    for (const { cache } of this.#issuers.values()) cache.start();
  }

  /** The key cache of one configured issuer (tests read its stats and force a refresh). */
  jwksCache(issuer: string): JwksCache | undefined {
    return this.#issuers.get(issuer)?.cache;
  }

  /**
   * Extracts and verifies the request's bearer token. Undefined when there is none and none is required.
   * Throws MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED (400), MESHAUTH_ERR_TOKEN_MISSING (401 when `required`) or
   * MESHAUTH_ERR_TOKEN_INVALID (401).
   */
  async authenticate(headers: RequestHeaders, options: VerifyOptions = {}): Promise<EndUser | undefined> {
    const token = this.bearerOf(headers);
    if (token === undefined) {
      if (!this.required) return undefined;
      this.#metrics?.tokenVerifications.inc({ result: 'missing' });
      throw new MeshauthError('MESHAUTH_ERR_TOKEN_MISSING', 'end-user token required', { reason: 'missing' });
    }
    return this.verify(token, options);
  }

  /**
   * The request's bearer token (extractBearer), or undefined when it carries none; a malformed header is counted
   * before MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED is thrown. Pass the raw list to see repeated lines.
   */
  bearerOf(headers: RequestHeaders): string | undefined {
    try {
      return extractBearer(headers);
    } catch (error) {
      this.#metrics?.tokenVerifications.inc({ result: 'malformed_header' });
      throw error;
    }
  }

  /**
   * Verifies one compact JWS. Throws MESHAUTH_ERR_TOKEN_INVALID with a TokenRejectionReason as `reason` and the
   * token's issuer, alg and kid as `detail`. Counted here, not logged: the listener that refuses the request writes
   * its one line with them (a line here too would double what any client can make the sidecar write).
   */
  async verify(token: string, options: VerifyOptions = {}): Promise<EndUser> {
    try {
      const user = await this.#verify(token, options);
      if (options.maxClaimBytes !== undefined) checkClaimBytes(user, options.maxClaimBytes);
      this.#metrics?.tokenVerifications.inc({ result: 'ok' });
      return user;
    } catch (error) {
      const rejection = isMeshauthError(error, 'MESHAUTH_ERR_TOKEN_INVALID')
        ? error
        : tokenInvalid('format', 'token could not be verified', {}, error);
      this.#metrics?.tokenVerifications.inc({ result: rejection.reason ?? 'format' });
      throw rejection;
    }
  }

  /** Stops background JWKS refreshes and closes connections to the issuers. */
  async close(): Promise<void> {
    this.#verified.clear();
    await Promise.all([...this.#issuers.values()].map(({ cache }) => cache.close()));
  }

  async #verify(token: string, options: VerifyOptions): Promise<EndUser> {
    if (typeof token !== 'string') throw tokenInvalid('format', 'token is not a string');
    const reused = await this.#verifiedBefore(token, options);
    if (reused !== undefined) return reused;
    const shape = inspectToken(token, this.#tunables.maxTokenBytes);
    const detail: TokenRejectionDetail = {
      issuer: forLog(shape.iss) ?? '',
      alg: forLog(shape.alg) ?? '',
      ...(shape.kid === undefined ? {} : { kid: forLog(shape.kid) ?? '' }),
    };
    const rules = this.#issuers.get(shape.iss);
    if (rules === undefined) throw tokenInvalid('issuer', 'issuer not configured', detail);
    if (!rules.algorithms.has(shape.alg)) throw tokenInvalid('alg_not_allowed', 'algorithm not allowed', detail);
    this.#checkTyp(shape.header.typ, rules.config.typ, detail);

    const key = await rules.cache.getKey(shape.kid, shape.alg);
    const nowSeconds = Math.floor(this.#now() / 1000);
    const skew = this.#tunables.clockSkewSeconds;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [shape.alg],
        issuer: rules.config.issuer,
        audience: [...rules.config.audiences],
        clockTolerance: skew,
        requiredClaims: ['exp'],
        currentDate: new Date(nowSeconds * 1000),
        ...(rules.config.typ === undefined ? {} : { typ: rules.config.typ }),
      }));
    } catch (error) {
      throw tokenInvalid(reasonOf(error), (error as Error).message, detail, error);
    }

    // jose accepts any JSON number; Infinity (1e309) or NaN must not mean "never expires" (J04).
    for (const claim of ['exp', 'nbf', 'iat'] as const) {
      const value = payload[claim];
      if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value))) {
        throw tokenInvalid(claim === 'exp' ? 'missing_exp' : 'claims', `${claim} is not a finite number`, detail);
      }
    }
    if (typeof payload.iat === 'number' && payload.iat > nowSeconds + skew) {
      throw tokenInvalid('not_yet_valid', 'iat is in the future', detail);
    }
    checkTokenLifetime(payload, nowSeconds, this.#tunables.maxTokenLifetimeSeconds, skew, detail);
    const user = endUserFromClaims(payload, this.#config.claims);
    if (user === undefined) throw tokenInvalid('missing_sub', 'token has no valid sub (a string) or client_id', detail);
    if (options.forPassport === true && expiredForPassport(user, new Date(nowSeconds * 1000))) {
      throw tokenInvalid('expired', 'token has expired: no passport can be minted for it', detail);
    }
    if (token.length <= MAX_KEPT_TOKEN_BYTES) {
      if (this.#verified.size >= MAX_VERIFIED_TOKENS)
        this.#verified.delete(this.#verified.keys().next().value as string);
      this.#verified.set(token, {
        rules,
        kid: shape.kid,
        alg: shape.alg,
        key,
        user,
        exp: payload.exp as number,
        nbf: payload.nbf as number | undefined,
        iat: payload.iat as number | undefined,
      });
    }
    return user;
  }

  /**
   * The user of a token verified before, if its key is still the one its issuer's key set gives for it and its times
   * still hold as the full check would find them (jose: `exp` after now minus the skew, `nbf` before now plus it).
   * Anything else goes through the full check, which refuses with the reason it always gave.
   */
  async #verifiedBefore(token: string, options: VerifyOptions): Promise<EndUser | undefined> {
    const kept = this.#verified.get(token);
    if (kept === undefined) return undefined;
    let key: CryptoKey | undefined;
    try {
      key = await kept.rules.cache.getKey(kept.kid, kept.alg);
    } catch {
      key = undefined;
    }
    const nowSeconds = Math.floor(this.#now() / 1000);
    const skew = this.#tunables.clockSkewSeconds;
    const holds =
      key === kept.key &&
      kept.exp > nowSeconds - skew &&
      (kept.nbf === undefined || kept.nbf <= nowSeconds + skew) &&
      (kept.iat === undefined || kept.iat <= nowSeconds + skew) &&
      !(options.forPassport === true && expiredForPassport(kept.user, new Date(nowSeconds * 1000)));
    if (holds) return kept.user;
    this.#verified.delete(token);
    return undefined;
  }

  #checkTyp(typ: unknown, required: string | undefined, detail: TokenRejectionDetail): void {
    if (typ === undefined && required === undefined) return;
    if (typeof typ !== 'string') throw tokenInvalid('typ', 'typ header missing or not a string', detail);
    const ok =
      required === undefined ? DEFAULT_TYPS.has(normalizeTyp(typ)) : normalizeTyp(typ) === normalizeTyp(required);
    if (!ok) throw tokenInvalid('typ', 'typ header not accepted', detail);
  }
}

/** Maps jose's error classes to our bounded reasons. */
function reasonOf(error: unknown): TokenRejectionReason {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf':
        return 'not_yet_valid';
      case 'aud':
        return 'audience';
      case 'iss':
        return 'issuer';
      case 'typ':
        return 'typ';
      case 'exp':
        return 'missing_exp';
      default:
        return 'claims';
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  return 'format';
}
